"""One module per resource; each defines `router` (an APIRouter without prefix) and is mounted by
`api.app.create_app` under /api/v1. A module may also define `attach(app, ctx, *, follow)` to start
what it needs (the live stream's follower) and to stop it on shutdown."""

"""The live side of the API: the chain follower and the hub that fans its messages out."""

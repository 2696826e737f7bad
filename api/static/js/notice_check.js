// A crisis notice is shown as verified only when the page itself finds that the SHA-256 of the notice's
// fields equals the hash recorded on-chain with it, and the server found the recording event's batch
// signature valid. A notice altered or inserted in the server's store fails the first check here, in
// the reader's own browser, whatever the server says. (@noble/hashes: crypto.subtle is absent over
// plain http on a phone.)

import { sha256 } from "/vendor/noble-hashes/sha2.js";

const encoder = new TextEncoder();

export function sha256Hex(text) {
  return Array.from(sha256(encoder.encode(text)), (b) => b.toString(16).padStart(2, "0")).join("");
}

/** The bytes the notice's digest is taken over, rebuilt here from the fields this page shows (the
 * rule of chain/notices.py:canonical_notice: every stored field as JSON, keys sorted, no spaces, UTF-8),
 * never taken from the server's `canonical`: a server that altered the text cannot make it match. */
export function canonicalOf(notice) {
  const fields = {};
  for (const key of ["audience", "author", "created", "district", "id", "sector", "text"]) fields[key] = notice[key] ?? "";
  return JSON.stringify(fields);
}

function onChainHash(notice) {
  return String(notice.onchain_sha256 ?? "").toLowerCase().replace(/^0x/, "");
}

/** {verified, computed, recorded, reason}: verified only when both checks pass. */
export function checkNotice(notice) {
  const computed = sha256Hex(canonicalOf(notice));
  const recorded = onChainHash(notice);
  const serverOk = notice.verified === true;
  if (!recorded) return { verified: false, computed, recorded, reason: "no hash recorded on-chain" };
  if (computed !== recorded) return { verified: false, computed, recorded, reason: "its text does not match the hash on-chain" };
  if (!serverOk) return { verified: false, computed, recorded, reason: notice.reason ?? "the recording on-chain does not verify" };
  return { verified: true, computed, recorded, reason: "" };
}

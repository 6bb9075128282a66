// The sweep of the disk backend: reclaims the chunks of large values that no head points at.
// Private to this folder.
//
// Every generation of chunks that no head points at has a pending marker (see _disk_blob.ts):
// one being written (until its head's unit deletes the marker), or one being deleted after an
// overwrite. A crash (SIGKILL, power loss) between the chunk commits and the head's unit, or
// in the middle of a deletion, leaves the marker behind. The sweep lists the markers and
// deletes the chunks of each one older than the grace period (a write in progress in another
// process is younger) that this process is not writing itself: first it claims the marker with
// a checked commit (so a head unit still on its way fails its own check on the marker and
// refuses its write instead of pointing at deleted chunks), then deletes the chunks and the
// marker.
//
// Expired cache entries need no sweep: Deno KV deletes them itself (see the disk backend's
// module doc for when).

import { deleteChunks, type PendingMarker } from "./_disk_blob.ts";
import { type GroupCommitter, UnitBuilder } from "./_disk_commits.ts";
import { pendingKey } from "./_disk_keys.ts";

/** What one sweep reclaimed. */
export interface SweepResult {
  /** Generations whose chunks were deleted. */
  generations: number;
  /** Chunk entries deleted (or already gone). */
  chunks: number;
}

/** Options of {@linkcode sweepChunks}. */
export interface SweepOptions {
  /** Markers younger than this many ms are left alone (writes in progress elsewhere). */
  graceMs: number;
  /** Generations this process is writing right now. */
  writing: ReadonlySet<string>;
}

/** Deletes the chunks of every generation left behind, as described above. */
export async function sweepChunks(
  kv: Deno.Kv,
  committer: GroupCommitter,
  options: SweepOptions,
): Promise<SweepResult> {
  const result: SweepResult = { generations: 0, chunks: 0 };
  const before = Date.now() - options.graceMs;
  const markers = kv.list<PendingMarker>({ prefix: ["chunk-pending"] }, { batchSize: 500 });
  for await (const { key, value, versionstamp } of markers) {
    const gen = key[1];
    if (typeof gen !== "string" || options.writing.has(gen)) continue;
    if (value.createdAt > before) continue;
    if (value.createdAt !== 0) {
      // Claim it: from now on, no head may point at these chunks.
      const claim = new UnitBuilder().check(key, versionstamp)
        .set(pendingKey(gen), { ...value, createdAt: 0 });
      if (!(await committer.submit(claim.build())).ok) continue;
    }
    const ref = { gen, chunks: value.chunks, size: 0 };
    await deleteChunks(committer, value.service, value.key, ref, 0);
    result.generations++;
    result.chunks += value.chunks;
  }
  return result;
}

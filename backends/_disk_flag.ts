// Flag sets and deletes on Deno KV, batched per flag. Private to this folder.
//
// A batch of sets only is a blind write of its last value: it needs neither a read nor a check
// (whatever the flag held, it ends with that value). A batch with a delete needs to know whether
// the flag exists (a delete of a flag never set is refused alone): it is planned from the flag's
// entry, as remembered or read, and checks its versionstamp.

import { absent } from "./_util.ts";
import type { Answer, BatchModel } from "./_disk_batch.ts";
import { UnitBuilder } from "./_disk_commits.ts";
import type { PointReader } from "./_disk_reads.ts";
import { flagKey } from "./_disk_keys.ts";

/** A set of a flag to a value, or its delete. */
export type FlagOp = { type: "set"; value: boolean } | { type: "delete" };

/** What is known of a flag: its entry's versionstamp (`null`: absent), or nothing yet. */
export type FlagState = { versionstamp: string | null } | "unread";

/** The batch model of flags. */
export function flagModel(reader: PointReader): BatchModel<FlagOp, FlagState, void> {
  const needsState = (ops: readonly FlagOp[]) => ops.some((op) => op.type === "delete");
  return {
    async read(key, ops) {
      if (!needsState(ops)) return "unread";
      return { versionstamp: (await reader.get(flagKey(key))).versionstamp };
    },
    fresh: (state, ops) => state !== "unread" || !needsState(ops),
    plan(key, state, ops) {
      const checked = state !== "unread" && needsState(ops);
      let exists = state !== "unread" && state.versionstamp !== null;
      let last: FlagOp | undefined;
      const answers: Answer<void>[] = ops.map((op) => {
        if (op.type === "delete") {
          if (!exists) return { error: absent("flag", key) };
          exists = false;
        } else exists = true;
        last = op;
        return { value: undefined };
      });
      const unit = new UnitBuilder();
      if (checked) {
        unit.check(flagKey(key), (state as { versionstamp: string | null }).versionstamp);
      }
      if (last?.type === "set") unit.set(flagKey(key), last.value);
      else if (last?.type === "delete") unit.delete(flagKey(key));
      const end = last;
      return {
        unit: unit.build(),
        answers,
        next(versionstamp) {
          if (end === undefined) return state;
          return { versionstamp: end.type === "set" ? versionstamp : null };
        },
      };
    },
  };
}

// Set changes on Deno KV, batched per set. Private to this folder.
//
// A set is its items (one entry each, keyed by the item's SHA-256 digest) and a guard entry
// holding the item count, rewritten by every change of the set and deleted with its last item:
// its versionstamp stands for the whole set (absent: no item), and the guards are what a
// listing of sets lists. The batch model remembers a set's items with the guard's versionstamp;
// the adds, removes and deletes of one set that arrive together are applied in order to those
// items (an add to a set of `maxItems` items is refused alone, so the limit stays exact; so is
// a delete of a set with no item), and the unit writes the items that changed and the new
// count, checked against the guard. A batch that changes nothing (an add of an item already
// there) only checks the guard. A delete of a set too large for one commit goes in parts, each
// checked against the guard: readers may see the set shrink, then vanish.

import { createHash } from "node:crypto";
import { absent, setFull, sortItems } from "./_util.ts";
import { retryBusy } from "./_disk_busy.ts";
import type { Answer, BatchModel } from "./_disk_batch.ts";
import { UnitBuilder } from "./_disk_commits.ts";
import type { PointReader } from "./_disk_reads.ts";
import {
  keyBytes,
  KV_MAX_COMMIT_BYTES,
  KV_MAX_COMMIT_KEY_BYTES,
  KV_MAX_COMMIT_MUTATIONS,
  setGuardKey,
  setPrefix,
} from "./_disk_keys.ts";

/** Room kept free in a set's unit for the guard's check and write. */
const MARGIN = 8192;

/** An add (with the set's size limit) or a remove of one item, or the delete of the set. */
export type SetOp =
  | { type: "add"; item: string; maxItems: number }
  | { type: "remove"; item: string }
  | { type: "delete" };

/** An add or a remove. */
type ItemOp = Exclude<SetOp, { type: "delete" }>;

/** The SHA-256 digest of a set item's UTF-8, in hex: the last part of the item's key. */
export function digest(item: string): string {
  return createHash("sha256").update(item).digest("hex");
}

/** The items of a set, sorted, as of the guard's versionstamp. */
export interface SetState {
  versionstamp: string | null;
  items: readonly string[];
  members: ReadonlySet<string>;
}

/** Reads the sorted items of a set. */
export async function readItems(kv: Deno.Kv, set: string): Promise<string[]> {
  const items: string[] = [];
  const entries = kv.list<string>({ prefix: setPrefix(set) }, { batchSize: 500 });
  for await (const entry of entries) items.push(entry.value);
  return sortItems(items);
}

/** Where `item` goes in sorted `items` (JavaScript's default string order). */
function position(items: readonly string[], item: string): number {
  let low = 0;
  let high = items.length;
  while (low < high) {
    const middle = (low + high) >>> 1;
    if (items[middle] < item) low = middle + 1;
    else high = middle;
  }
  return low;
}

/** The batch model of sets. */
export function setModel(
  kv: Deno.Kv,
  reader: PointReader,
): BatchModel<SetOp, SetState, string[] | undefined> {
  return {
    async read(set) {
      // The guard first: a change between the two reads moves the guard, and fails the check.
      const guard = await reader.get(setGuardKey(set));
      const items = await retryBusy(() => readItems(kv, set));
      return { versionstamp: guard.versionstamp, items, members: new Set(items) };
    },
    weigh: (state) => state.items.length + 1,
    plan(set, state, ops) {
      let items = state.items as string[];
      let members = state.members as Set<string>;
      let copied = false;
      const changes = new Set<string>(); // the items added or removed
      const copy = () => {
        if (copied) return;
        items = items.slice();
        members = new Set(members);
        copied = true;
      };
      // What the changes may write at most: the ops after the first that would overflow one
      // commit wait for the next unit.
      const itemKey = keyBytes([...setPrefix(set), "0".repeat(64)]);
      const budget = {
        bytes: KV_MAX_COMMIT_BYTES - MARGIN,
        keys: KV_MAX_COMMIT_KEY_BYTES - MARGIN,
        writes: KV_MAX_COMMIT_MUTATIONS - 10,
      };
      const apply = (op: ItemOp, has: boolean): Answer<string[]> => {
        if ((op.type === "add") === has) return { value: items.slice() };
        if (op.type === "add" && items.length >= op.maxItems) {
          return { error: setFull(set, op.item, items.length, op.maxItems) };
        }
        copy();
        const at = position(items, op.item);
        if (op.type === "add") {
          items.splice(at, 0, op.item);
          members.add(op.item);
        } else {
          items.splice(at, 1);
          members.delete(op.item);
        }
        changes.add(op.item);
        return { value: items.slice() };
      };
      /** Removes the first `count` items (all of them: the set's delete). */
      const removeFirst = (count: number) => {
        copy();
        for (const item of items.slice(0, count)) {
          members.delete(item);
          changes.add(item);
        }
        items = items.slice(count);
      };
      let taken = ops.length;
      const answers: Answer<string[] | undefined>[] = [];
      for (const [i, op] of ops.entries()) {
        if (op.type === "delete") {
          if (items.length === 0) {
            answers.push({ error: absent("set", set) });
            continue;
          }
          // A delete is one delete an item: a set larger than one commit goes in parts.
          const room = Math.min(Math.floor(budget.bytes / itemKey), budget.writes);
          if (items.length > room) {
            taken = i;
            if (i === 0) {
              removeFirst(room);
            }
            break;
          }
          budget.bytes -= items.length * itemKey;
          budget.writes -= items.length;
          removeFirst(items.length);
          answers.push({ value: undefined });
          continue;
        }
        const has = members.has(op.item);
        if ((op.type === "add") !== has) {
          budget.bytes -= 2 * itemKey + 2 * op.item.length + 8;
          budget.keys -= itemKey;
          budget.writes--;
          const full = budget.bytes < 0 || budget.keys < 0 || budget.writes < 0;
          if (i > 0 && full) {
            taken = i;
            break;
          }
        }
        answers.push(apply(op, has));
      }
      const unit = new UnitBuilder().check(setGuardKey(set), state.versionstamp);
      let changed = false;
      for (const item of changes) {
        const present = members.has(item);
        if (present === state.members.has(item)) continue; // Added and removed again.
        if (present) unit.set([...setPrefix(set), digest(item)], item);
        else unit.delete([...setPrefix(set), digest(item)]);
        changed = true;
      }
      // The guard holds the count; an empty set has none (the listings list the guards).
      if (changed && items.length > 0) unit.set(setGuardKey(set), items.length);
      else if (changed) unit.delete(setGuardKey(set));
      const after: SetState = { versionstamp: null, items, members };
      return {
        unit: unit.build(),
        answers,
        taken,
        next: (versionstamp) =>
          changed ? { ...after, versionstamp: items.length > 0 ? versionstamp : null } : state,
      };
    },
  };
}

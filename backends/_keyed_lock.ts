// One-at-a-time sections per key, within one process. Private to this folder.
//
// The disk backend runs the read-check-commit of a set change under the lock of the set's name,
// so that concurrent changes of one set in one process queue up instead of failing each other's
// versionstamp checks (the checks still guard against other processes).

/** Runs async sections one at a time per key; keys without waiters hold no memory. */
export class KeyedLock {
  #tails = new Map<string, Promise<unknown>>();

  /** Runs `section` once every earlier section of `key` has settled. */
  run<T>(key: string, section: () => Promise<T>): Promise<T> {
    const previous = this.#tails.get(key) ?? Promise.resolve();
    const result = previous.then(section, section);
    const tail = result.then(() => {}, () => {});
    this.#tails.set(key, tail);
    tail.then(() => {
      if (this.#tails.get(key) === tail) this.#tails.delete(key);
    });
    return result;
  }
}

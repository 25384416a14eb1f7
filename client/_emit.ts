/**
 * Calling listeners, shared by the client's event sources.
 *
 * @module
 */

/**
 * Calls every listener with `event`, in order. A listener that throws is reported
 * (`reportError`: the program's bug, not the caller's) and the others still run.
 */
export function emit<E>(listeners: Iterable<(event: E) => void>, event: E): void {
  for (const listener of [...listeners]) {
    try {
      listener(event);
    } catch (err) {
      reportError(err);
    }
  }
}

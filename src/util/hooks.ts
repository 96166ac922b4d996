// Composing optional callbacks (a role's metrics beside a caller's own hook).

/** Both hooks, in order (the second may be absent). */
export function both<T>(first: (v: T) => void, second: ((v: T) => void) | undefined): (v: T) => void {
  if (second === undefined) return first;
  return (v) => {
    first(v);
    second(v);
  };
}

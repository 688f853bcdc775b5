/**
 * Seeded draws keyed by what is being decided (e.g. "throttle|StopInstances|17": the 17th
 * StopInstances call), not by a shared stream: concurrent calls of other actions do not shift the
 * faults one action sees, so a seed reproduces a scenario even when calls interleave differently.
 */
export function unitDraw(seed: number, key: string): number {
  // cyrb53-style 32-bit mixing of the seed and the key, then scaled to [0, 1).
  let h1 = 0xdeadbeef ^ seed;
  let h2 = 0x41c6ce57 ^ seed;
  for (let i = 0; i < key.length; i++) {
    const ch = key.charCodeAt(i);
    h1 = Math.imul(h1 ^ ch, 2654435761);
    h2 = Math.imul(h2 ^ ch, 1597334677);
  }
  h1 = Math.imul(h1 ^ (h1 >>> 16), 2246822507) ^ Math.imul(h2 ^ (h2 >>> 13), 3266489909);
  h2 = Math.imul(h2 ^ (h2 >>> 16), 2246822507) ^ Math.imul(h1 ^ (h1 >>> 13), 3266489909);
  return ((h2 >>> 0) * 2 ** 21 + (h1 >>> 11)) / 2 ** 53;
}

/**
 * The workflow bundle's shared modules (worker/bundle-options.ts lists this file in
 * `preloadModules`): evaluated ONCE per worker V8 context, before any workflow runs, instead of once
 * per cached workflow and once per replay after an eviction. Importing the workflows' index here
 * puts zod, every contract schema, the SDK's workflow API and amiflow's workflow code in the
 * context's shared module cache (issue 13: each cached workflow evaluated them again, ~2.7 MB and
 * tens of ms of CPU each).
 *
 * Why that is safe: none of these modules keeps per-run state. The SDK reads everything per run
 * from the activator (`proxyActivities`, `defineQuery`, `log`, `metricMeter` resolve it at call
 * time, and its own bootstrap already shares `workflow.js`); amiflow's workflow and contract
 * modules hold only constants, schemas and functions (no module-level `let` but the client-only
 * region check, which the sandbox never sets). The SDK deep-freezes every shared module after this
 * file runs; `test/workflows/shared-modules.test.ts` keeps both facts honest.
 */
import * as contracts from '../contracts';
import * as workflows from './index';

/**
 * Zod 4 builds some members of a schema on first read and then writes them onto the schema
 * (`safeParse`, `parse` and the other methods bound to it, and internals such as `optin`,
 * `propValues`, `pattern`). On a frozen schema that write throws "Cannot define property …, object
 * is not extensible", so every lazy member of every schema the SDK will freeze is read once here,
 * before the freeze. The walk reaches what the freeze reaches: own properties of objects, from the
 * modules' exports (functions are frozen by the SDK but not walked, so neither are they here).
 */
export function materializeLazyMembers(roots: readonly unknown[]): number {
  const seen = new WeakSet<object>();
  const pending: unknown[] = [...roots];
  let schemas = 0;
  while (pending.length > 0) {
    const value = pending.pop();
    if (value === null || typeof value !== 'object' || seen.has(value)) continue;
    seen.add(value);
    if (Object.prototype.hasOwnProperty.call(value, '_zod')) {
      schemas += 1;
      readInheritedAccessors(value);
      const internals: unknown = Reflect.get(value, '_zod');
      if (internals !== null && typeof internals === 'object') readInheritedAccessors(internals);
      if (internals !== null && typeof internals === 'object') keepPatternsWritable(internals);
      settleFirstParses(value);
    }
    for (const key of Reflect.ownKeys(value)) {
      try {
        pending.push(Reflect.get(value, key));
      } catch {
        // A getter that throws is left as it is: the freeze reads it the same way and skips it too.
      }
    }
  }
  return schemas;
}

/** The proxies made so far: a definition shared by a schema and its clones is rewritten once. */
const writablePatterns = new WeakSet<object>();

/**
 * Zod resets `lastIndex` on the pattern of every `.regex()` check (and a few formats) before each
 * test; a frozen RegExp refuses that write ("Cannot assign to read only property 'lastIndex'"),
 * and RegExps are not otherwise changed by a check. So each pattern a schema's definition holds
 * becomes a proxy the freeze cannot freeze (it refuses `preventExtensions`, which the SDK's freeze
 * tolerates), forwarding to a copy of the RegExp that the freeze never reaches. Matching is
 * synchronous, so sharing one RegExp (and its `lastIndex`) between runs cannot interleave.
 */
function keepPatternsWritable(internals: object): void {
  const def: unknown = Reflect.get(internals, 'def');
  for (const holder of [def, internals]) {
    if (holder === null || typeof holder !== 'object') continue;
    for (const key of Reflect.ownKeys(holder)) {
      const descriptor = Object.getOwnPropertyDescriptor(holder, key);
      const value: unknown = descriptor?.value;
      if (!(value instanceof RegExp) || writablePatterns.has(value) || descriptor?.writable !== true)
        continue;
      Reflect.set(holder, key, writableRegExp(value));
    }
  }
}

function writableRegExp(re: RegExp): RegExp {
  const bound = new Map<PropertyKey, unknown>();
  // A copy only the proxy holds: the original may be exported too (ACCOUNT_RE), and frozen there.
  const proxy = new Proxy(new RegExp(re.source, re.flags), {
    // RegExp methods need the real RegExp as `this` (its internal slots), not the proxy.
    get(target, key) {
      const value: unknown = Reflect.get(target, key, target);
      if (typeof value !== 'function') return value;
      let fn = bound.get(key);
      if (fn === undefined) {
        fn = (value as (...args: unknown[]) => unknown).bind(target);
        bound.set(key, fn);
      }
      return fn;
    },
    set: (target, key, value) => Reflect.set(target, key, value, target),
    preventExtensions: () => false,
  });
  writablePatterns.add(proxy);
  return proxy;
}

/**
 * Zod's cycle memoizer replaces a container's `_zod.parse` (and `run`) on its first parse or two,
 * once it knows whether the schema can recurse; on a frozen schema that assignment throws. Two
 * parses of `undefined` (the answer does not depend on the value) settle it for this schema; the
 * walk reaches every nested schema and settles each the same way.
 */
function settleFirstParses(schema: object): void {
  const safeParse: unknown = Reflect.get(schema, 'safeParse');
  if (typeof safeParse !== 'function') return;
  for (let i = 0; i < 2; i += 1) {
    try {
      Reflect.apply(safeParse, schema, [undefined]);
    } catch {
      // An async-only schema refuses a synchronous parse; it has nothing to settle this way.
    }
  }
}

/** The prototypes whose bound-method accessors are already plain methods. */
const plainMethods = new WeakSet<object>();

/**
 * Zod 4 installs a schema's methods (`optional`, `refine`, `safeParse`, … ~55 of them) on its class's
 * prototype as accessors that, on first read, bind the method to the schema and store the bound copy
 * on it, so that a detached `const { parse } = schema` works. Reading them all on every schema before
 * the freeze (below) would leave each of the bundle's ~900 schemas with ~55 bound functions of its own:
 * ~48,000 functions and their property storage, ~3 MB of every worker's workflow thread (issue 13's
 * idle RSS, docs/sizing.md). Instead each such accessor becomes the plain method, once per prototype:
 * `schema.safeParse(x)` reads it from the prototype with `this` the schema, as every call in amiflow
 * does, and nothing is written on a frozen schema. Zod's accessor answers a read with no receiver
 * with the raw method (its own rule, for test spies), which is how a bound-method accessor is told
 * from a real getter (`description`, `~standard`): those stay and are read per schema below.
 */
function plainPrototypeMethods(proto: object): void {
  if (plainMethods.has(proto)) return;
  plainMethods.add(proto);
  for (const key of Reflect.ownKeys(proto)) {
    const descriptor = Object.getOwnPropertyDescriptor(proto, key);
    if (!descriptor || typeof descriptor.get !== 'function' || !descriptor.set || !descriptor.configurable)
      continue;
    let method: unknown;
    try {
      method = Reflect.apply(Reflect.get(descriptor, 'get') as () => unknown, undefined, []);
    } catch {
      continue;
    }
    if (typeof method !== 'function') continue;
    Object.defineProperty(proto, key, {
      value: method,
      writable: true,
      configurable: true,
      enumerable: false,
    });
  }
}

/**
 * Reads every accessor `target` inherits (below Object.prototype), so each lazy member becomes its own
 * data; bound-method accessors first become plain methods of their prototype (above).
 */
function readInheritedAccessors(target: object): void {
  for (
    let proto: object | null = Object.getPrototypeOf(target) as object | null;
    proto !== null && proto !== Object.prototype;
    proto = Object.getPrototypeOf(proto) as object | null
  ) {
    plainPrototypeMethods(proto);
    for (const key of Reflect.ownKeys(proto)) {
      if (typeof Object.getOwnPropertyDescriptor(proto, key)?.get !== 'function') continue;
      try {
        Reflect.get(target, key);
      } catch {
        // Same as above: a member that cannot be built now fails the same way when a run reads it.
      }
    }
  }
}

// Not zod's own namespace: importing it whole would defeat tree shaking (its locales alone are
// ~0.8 MB of bundle); every schema a run can reach is reachable from these two.
materializeLazyMembers([contracts, workflows]);

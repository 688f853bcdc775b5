/**
 * The client's side of the trust boundary for what callers type and what AWS returns: workflow and
 * schedule ids checked before they reach Temporal, library inputs accepted only as plain data (own
 * properties, no prototype tricks), and control characters kept off terminals.
 */
import type { InputIssue } from '../contracts/issues';
import { InvalidInputError } from '../contracts/issues';

/**
 * Temporal's default limit on a workflow id is 1,000 bytes (`limit.maxIDLength`); a longer one is
 * refused by the server only after the request travelled, and a shorter server limit is possible, so
 * the client refuses there with the field named.
 */
export const MAX_ID_BYTES = 1000;

/** C0/C1 controls, DEL, bidi overrides/isolates and line/paragraph separators: never in an id. */
const UNPRINTABLE = /[\u0000-\u001f\u007f-\u009f\u200b-\u200f\u2028-\u202e\u2060-\u2069\ufeff]/u;

/** Why `value` cannot be a workflow or schedule id, as issues on `field` (none when it can). */
export function idIssues(field: string, value: unknown, what = 'workflow id'): InputIssue[] {
  if (typeof value !== 'string') return [{ field, message: `must be a ${what} (a string)` }];
  if (value === '') return [{ field, message: `must be a ${what}, not empty` }];
  const bytes = Buffer.byteLength(value, 'utf8');
  if (bytes > MAX_ID_BYTES)
    return [{ field, message: `is ${bytes} bytes long; a ${what} has at most ${MAX_ID_BYTES}` }];
  const bad = UNPRINTABLE.exec(value);
  if (bad)
    return [
      {
        field,
        message: `contains the control or invisible character U+${(bad[0].codePointAt(0) ?? 0).toString(16).padStart(4, '0').toUpperCase()} at position ${bad.index + 1}; a ${what} is printable text`,
      },
    ];
  if (value.trim() !== value)
    return [{ field, message: `starts or ends with white space; a ${what} does not` }];
  return [];
}

/** Throws InvalidInputError when `value` is not a usable id; returns it otherwise. */
export function checkedId(field: string, value: unknown, what = 'workflow id'): string {
  const issues = idIssues(field, value, what);
  if (issues.length > 0) throw new InvalidInputError(issues);
  return value as string;
}

/** Deeper than any amiflow input nests; a deeper value is refused rather than walked. */
const MAX_DEPTH = 32;

function kindOf(value: unknown): string {
  if (value === null) return 'null';
  if (Array.isArray(value)) return 'an array';
  return typeof value === 'object' ? 'an object' : `a ${typeof value}`;
}

function walk(value: unknown, path: string, depth: number, issues: InputIssue[]): void {
  if (issues.length >= 20) return; // enough to say what is wrong
  if (typeof value === 'function' || typeof value === 'symbol' || typeof value === 'bigint') {
    issues.push({ field: path, message: `is ${kindOf(value)}; inputs are plain data (JSON)` });
    return;
  }
  if (typeof value !== 'object' || value === null) return;
  if (depth > MAX_DEPTH) {
    issues.push({ field: path, message: `nests deeper than ${MAX_DEPTH} levels` });
    return;
  }
  if (Array.isArray(value)) {
    value.forEach((v: unknown, i) => walk(v, `${path}[${i}]`, depth + 1, issues));
    return;
  }
  const proto = Object.getPrototypeOf(value) as unknown;
  if (proto !== Object.prototype && proto !== null) {
    // Object.create(valid), class instances, Dates…: validators would read inherited fields.
    issues.push({
      field: path,
      message: 'is not a plain object: only its own fields are read, so give them as own properties',
    });
    return;
  }
  for (const key of Reflect.ownKeys(value)) {
    if (typeof key === 'symbol') continue;
    const at = path ? `${path}.${key}` : key;
    // An own `__proto__` survives here but becomes the prototype when copied by assignment or parsed
    // by some JSON readers: it names no field of any input, so it is refused outright.
    if (key === '__proto__')
      issues.push({ field: at, message: `'__proto__' is not a field name (nor a tag key amiflow accepts)` });
    else walk((value as Record<string, unknown>)[key], at, depth + 1, issues);
  }
}

/**
 * Why `input` cannot be a library input: not an object (null, a string…), not plain data (an
 * inherited field, a function, `__proto__` as a key). Checked before schema validation so that a
 * caller gets `InvalidInputError` naming the field, never a TypeError from deep inside.
 */
export function plainInputIssues(input: unknown, field = 'input'): InputIssue[] {
  if (typeof input !== 'object' || input === null || Array.isArray(input))
    return [{ field, message: `must be an object with the input's fields, not ${kindOf(input)}` }];
  const issues: InputIssue[] = [];
  walk(input, '', 0, issues);
  return issues.map((i) => (i.field === '' ? { ...i, field } : i));
}

/** Throws InvalidInputError unless `input` is plain data; narrows it. */
export function requirePlainInput<T>(input: T, field = 'input'): T {
  const issues = plainInputIssues(input, field);
  if (issues.length > 0) throw new InvalidInputError(issues);
  return input;
}

/** Terminal controls that text from AWS or from people must not carry onto a terminal. */
const TERMINAL_UNSAFE = /[\u0000-\u0008\u000b-\u001f\u007f-\u009f\u202a-\u202e\u2066-\u2069]/gu;

/**
 * Text made safe for a terminal: control characters (escape sequences, carriage returns, bells) and
 * bidi overrides become visible `\u001b`-style escapes; newlines and tabs stay. A tag value such as
 * `\x1b]0;pwned\x07` is then printed as what it is instead of retitling or rewriting the screen.
 */
export function forTerminal(text: string): string {
  return text.replace(TERMINAL_UNSAFE, (c) => `\\u${(c.codePointAt(0) ?? 0).toString(16).padStart(4, '0')}`);
}

/**
 * Sharing with the image's own account is refused before anything starts when the owner is known
 * to the client (`accountId`); without it the owner is the worker's account, which only the workflow
 * learns (at its first describe), and it refuses there.
 */
export function ownAccountShareIssues(input: {
  accountId?: unknown;
  targets?: { accountIds?: unknown } | null;
}): InputIssue[] {
  const owner = input.accountId;
  const targets = input.targets?.accountIds;
  if (typeof owner !== 'string' || !Array.isArray(targets)) return [];
  const i = targets.indexOf(owner);
  return i < 0
    ? []
    : [
        {
          field: `targets.accountIds[${i}]`,
          message: `${owner} is the image's own account (accountId): an image is always available to its owner; name other accounts`,
        },
      ];
}

/**
 * How a bad input is reported, everywhere: one issue per bad field, the field named by its dotted
 * path (`tags.Owner`, `timeouts.imageAvailableSeconds`), the message saying what was wrong and what
 * to do. The zod schemas in this folder produce these issues; the client shows them before anything
 * starts and the workflow fails with them (InvalidInput) before any AWS call.
 */
import { z } from 'zod';

// Zod 4 compiles object parsers with `new Function` when it may. Jitless keeps parsing free of
// eval: the workflow sandbox stays deterministic, and the client and worker parse the same way.
z.config({ jitless: true });

export interface InputIssue {
  /** Dotted path of the offending field, e.g. `tags.Owner` or `timeouts.imageAvailableSeconds`. */
  field: string;
  message: string;
}

export class InvalidInputError extends Error {
  constructor(readonly issues: InputIssue[]) {
    super(formatIssues(issues));
    this.name = 'InvalidInputError';
  }
}

export function formatIssues(issues: InputIssue[]): string {
  return `invalid input: ${issues.map((i) => `${i.field}: ${i.message}`).join('; ')}`;
}

/** A value as a message quotes it: strings quoted and cut at 40 characters, the rest as JSON. */
export function show(value: unknown): string {
  if (typeof value === 'string') return `'${value.length > 40 ? `${value.slice(0, 40)}…` : value}'`;
  try {
    return JSON.stringify(value) ?? String(value);
  } catch {
    return String(value);
  }
}

/**
 * A strict object: an unknown field is an issue naming that field and the known ones (a typo such
 * as `noReboot` for `mode` must not pass silently); anything but an object "must be an object".
 */
export function strictObject<S extends z.ZodRawShape>(
  shape: S,
  notAnObject = 'must be an object',
): z.ZodObject<S, z.core.$strict> {
  const known = Object.keys(shape).join(', ');
  return z.strictObject(shape, {
    error: (iss) =>
      iss.code === 'unrecognized_keys' ? `is not a known field (known: ${known})` : notAnObject,
  });
}

/** Where a rule between fields reports: the path below the object it checks, and the message. */
export type Report = (path: readonly (string | number)[], message: string) => void;

function isRecord(value: unknown): value is Record<string, unknown> {
  return typeof value === 'object' && value !== null && !Array.isArray(value);
}

/**
 * Adds the rules between an object's fields (the own account is no share target, a key must be in
 * the copy's region). They run even when some field is bad, so every problem is named at once; the
 * fields they read are therefore `unknown` and each rule checks the types it relies on.
 */
export function withRules<T extends z.ZodType>(
  schema: T,
  rules: (value: Record<string, unknown>, report: Report) => void,
): T {
  return schema.superRefine(
    (value: unknown, ctx) => {
      if (!isRecord(value)) return;
      rules(value, (path, message) => ctx.addIssue({ code: 'custom', message, path: [...path] }));
    },
    { when: () => true },
  );
}

/**
 * The issues of a failed parse, as amiflow names them: the zod path joined with dots after `prefix`
 * (`(input)` for the input itself), one issue per unknown field, unknown fields first, then in the
 * order of `fields` (an object's fields as declared), so a rule between fields (which zod runs
 * last) reports where its field stands.
 */
export function issuesOf(
  error: z.ZodError,
  prefix = '',
  fields: readonly string[] = [],
  whole = '(input)',
): InputIssue[] {
  // List items by index in brackets, as people write them: `destinations[0].region`.
  const fieldOf = (path: readonly PropertyKey[]): string => {
    const named = path.reduce<string>(
      (at, p) => (typeof p === 'number' ? `${at}[${p}]` : at === '' ? String(p) : `${at}.${String(p)}`),
      prefix,
    );
    return named === '' ? whole : named;
  };
  const rank = (path: readonly PropertyKey[]): number => {
    const at = fields.indexOf(String(path[0]));
    return at < 0 ? fields.length : at;
  };
  // One issue per unknown field; those of the input itself first, as a typo there explains the rest.
  const all = error.issues.flatMap((i) =>
    i.code === 'unrecognized_keys'
      ? i.keys.map((k) => ({ path: [...i.path, k], message: i.message, top: i.path.length === 0 }))
      : [{ path: i.path, message: i.message, top: false }],
  );
  const unknown = all.filter((i) => i.top).map((i) => ({ field: fieldOf(i.path), message: i.message }));
  const rest = all
    .filter((i) => !i.top)
    .map((i, n) => ({ i, n }))
    .sort((a, b) => rank(a.i.path) - rank(b.i.path) || a.n - b.n)
    .map(({ i }) => ({ field: fieldOf(i.path), message: i.message }));
  return [...unknown, ...rest];
}

/** Every problem with `value` under `schema`, named from `prefix` (`whole`: the value itself); empty when it is valid. */
export function issuesFor(schema: z.ZodType, value: unknown, prefix = '', whole = '(input)'): InputIssue[] {
  const r = schema.safeParse(value);
  if (r.success) return [];
  return issuesOf(r.error, prefix, schema instanceof z.ZodObject ? Object.keys(schema.shape) : [], whole);
}

/** Returns `value` typed when valid; throws `InvalidInputError` naming every bad field otherwise. */
export function parseWith<S extends z.ZodType>(schema: S, value: unknown): z.infer<S> {
  const issues = issuesFor(schema, value);
  if (issues.length > 0) throw new InvalidInputError(issues);
  // The caller's own object, not zod's copy: what was validated is what runs.
  return value as z.infer<S>;
}

/**
 * Flags declared once: each flag's syntax, help, parser, choices and the input field it fills.
 * The command tree, the help text, the shell completion, the CLI reference and the "which flag was
 * wrong" mapping of validation issues are all derived from these declarations, so they cannot drift.
 */
import type { Command } from 'commander';
import { InvalidArgumentError, Option } from 'commander';
import { z } from 'zod';
import type { InputIssue } from '../../workflows/validation';
import { InvalidInputError } from '../../workflows/validation';
import { issuesFor } from '../../contracts/issues';

/** One flag of one command. */
export interface FlagSpec {
  /** commander syntax: `--instance <i-…>`, `--tag <key=value>`, `--watch`, `--no-wait`. */
  flags: string;
  help: string;
  /** The input field it fills (`timeouts.instanceStateSeconds`); validation issues on it name this flag. */
  field?: string;
  /** Turns the raw text into the value (throw InvalidArgumentError with what was wrong). */
  parse?: (raw: string, previous: unknown) => unknown;
  /** Collects every occurrence into a list. */
  repeat?: boolean;
  /** Shown in help and offered by completion; the validator checks them (with its own message). */
  choices?: readonly string[];
  default?: string | boolean;
  /** Environment variable read when the flag is absent (shown in help). */
  env?: string;
  /** For a boolean flag that sets a constant (`--leave-extra-enis` → `extraNetworkInterfaces: 'leave'`). */
  value?: unknown;
  /** Names of sub-fields as typed by people (`destinations[0].accountId` → `--to #1 account`). */
  subfields?: Record<string, string>;
  /**
   * The schema of one value (a list flag: of each item), set by `schemaFlag` for commands whose
   * values are not a workflow input checked as a whole: `flagIssues` checks them with it.
   */
  check?: z.ZodType;
}

export class UsageError extends Error {
  override name = 'UsageError';
}

const UNITS: Record<string, number> = { s: 1, m: 60, min: 60, h: 3600, d: 86400, w: 7 * 86400 };

/**
 * The one duration syntax of every duration flag: `90s`, `15m`, `2h`, `1d`, `2w` or plain seconds.
 * Plain numbers pass through unrounded (and a sign is kept) so the validator, not this parser,
 * names out-of-range values with the bounds the workflow accepts.
 */
export function parseDuration(raw: string): number {
  const m = /^(-?\d+(?:\.\d+)?)\s*(s|m|min|h|d|w)?$/.exec(raw.trim());
  if (!m) throw new InvalidArgumentError(`'${raw}' is not a duration (e.g. 90s, 15m, 2h, 1d, or seconds)`);
  const n = Number(m[1]);
  return m[2] === undefined ? n : Math.round(n * (UNITS[m[2]] ?? 1));
}

/** Seconds as the largest whole unit (`86400` → `1d`): how schedules show an interval. */
export function durationText(seconds: number): string {
  for (const [unit, size] of [
    ['d', 86400],
    ['h', 3600],
    ['m', 60],
  ] as const)
    if (seconds >= size && seconds % size === 0) return `${seconds / size}${unit}`;
  return `${seconds}s`;
}

export function parseWhole(raw: string): number {
  const n = Number(raw);
  if (raw.trim() === '' || !Number.isInteger(n))
    throw new InvalidArgumentError(`'${raw}' is not a whole number`);
  return n;
}

/**
 * `--tag key=value`, repeatable; a missing `=` or a key given twice is refused. Keys are own
 * properties only: `constructor` or `toString` are tag keys EC2 allows, not inherited names; `__proto__`
 * would become the object's prototype rather than a tag, so it is refused with its name.
 */
export function parseTag(raw: string, previous: unknown): Record<string, string> {
  const out: Record<string, string> = { ...((previous as Record<string, string> | undefined) ?? {}) };
  const at = raw.indexOf('=');
  if (at <= 0) throw new InvalidArgumentError(`'${raw}' must be key=value`);
  const key = raw.slice(0, at);
  if (key === '__proto__')
    throw new InvalidArgumentError(
      `the key '__proto__' is not accepted (it names no tag in JavaScript objects)`,
    );
  if (Object.hasOwn(out, key)) throw new InvalidArgumentError(`key '${key}' given twice`);
  Object.defineProperty(out, key, {
    value: raw.slice(at + 1),
    enumerable: true,
    writable: true,
    configurable: true,
  });
  return out;
}

export function parseIsoTime(raw: string): string {
  if (Number.isNaN(Date.parse(raw)))
    throw new InvalidArgumentError(`'${raw}' is not an ISO 8601 time (e.g. 2026-01-15T03:00:00Z)`);
  return raw;
}

/** A field's schema and what wraps it: its description (on the field or a wrapper), default, list-ness. */
function fieldSchema(
  schema: z.ZodType,
  field: string,
): { inner: z.ZodType; description?: string; defaultValue?: unknown; list: boolean } {
  let at: z.ZodType | undefined = schema;
  let description: string | undefined;
  let defaultValue: unknown;
  let list = false;
  const unwrap = () => {
    for (;;) {
      description ??= at?.description;
      if (at instanceof z.ZodOptional || at instanceof z.ZodNullable) at = at.unwrap() as z.ZodType;
      else if (at instanceof z.ZodDefault) {
        defaultValue = at.def.defaultValue;
        at = at.def.innerType as z.ZodType;
      } else return;
    }
  };
  for (const key of field.split('.')) {
    description = undefined;
    unwrap();
    at = at instanceof z.ZodObject ? (at.shape as Record<string, z.ZodType>)[key] : undefined;
    if (!at) throw new Error(`no field ${field} in the schema`);
  }
  unwrap();
  if (at instanceof z.ZodArray) {
    list = true;
    at = at.element as z.ZodType;
    unwrap();
  }
  return { inner: at, ...(description ? { description } : {}), defaultValue, list };
}

/**
 * A flag for a field of an input schema: its help is the field's description, its choices the
 * enum's values, a list field repeats, a number is read as a duration (`<duration>` flags) or a
 * whole number. Help, completion and validation then read one declaration. `more` adds or overrides.
 */
export function schemaFlag(
  flags: string,
  schema: z.ZodType,
  field: string,
  more: Partial<FlagSpec> = {},
): FlagSpec {
  const { inner, description, defaultValue, list } = fieldSchema(schema, field);
  const number = inner instanceof z.ZodNumber;
  return {
    flags,
    help: description ?? field,
    field,
    ...(list ? { repeat: true } : {}),
    ...(inner instanceof z.ZodEnum ? { choices: inner.options as readonly string[] } : {}),
    ...(typeof defaultValue === 'string' || typeof defaultValue === 'boolean'
      ? { default: defaultValue }
      : {}),
    ...(number ? { parse: flags.includes('<duration>') ? parseDuration : parseWhole } : {}),
    check: inner,
    ...more,
  };
}

/**
 * The problems with the given flags' values, each checked alone by the schema its flag was derived
 * from, named by the field (pass them to `refuse`, which names the flag): for commands that send
 * no workflow input to validate as a whole (a schedule's overlap policy, an approval's comment).
 */
export function flagIssues(specs: readonly FlagSpec[], opts: Record<string, unknown>): InputIssue[] {
  return specs.flatMap((spec) => {
    const value = opts[attributeOf(spec)];
    if (!spec.check || !spec.field || value === undefined) return [];
    const values: unknown[] = spec.repeat && Array.isArray(value) ? value : [value];
    return values.flatMap((v) => issuesFor(spec.check as z.ZodType, v, spec.field, spec.field));
  });
}

/** The commander attribute name of a flag (`--instance-timeout` → `instanceTimeout`, `--no-wait` → `wait`). */
export function attributeOf(spec: FlagSpec): string {
  return new Option(spec.flags).attributeName();
}

/** Adds the declared flags to `cmd`. */
export function addFlags(cmd: Command, specs: readonly FlagSpec[]): Command {
  for (const spec of specs) {
    const help = spec.repeat && !spec.help.includes('repeatable') ? `${spec.help} (repeatable)` : spec.help;
    const option = new Option(spec.flags, help);
    if (spec.choices) option.choices(spec.choices);
    // After choices(): the validator, not commander, refuses a wrong choice, naming the flag and
    // saying what the choice means; the choices stay on the option for help and completion.
    const parse = spec.parse;
    if (spec.repeat)
      option.argParser((raw: string, prev: unknown) => [
        ...((prev as unknown[] | undefined) ?? []),
        parse ? parse(raw, undefined) : raw,
      ]);
    else if (parse) option.argParser(parse);
    else if (spec.choices) option.argParser((raw: string) => raw);
    if (spec.default !== undefined) option.default(spec.default);
    if (spec.env) option.env(spec.env);
    cmd.addOption(option);
  }
  return cmd;
}

function setPath(target: Record<string, unknown>, path: string, value: unknown): void {
  const keys = path.split('.');
  let at = target;
  for (const key of keys.slice(0, -1)) {
    const next = at[key];
    at = (typeof next === 'object' && next !== null ? next : (at[key] = {})) as Record<string, unknown>;
  }
  at[keys[keys.length - 1] as string] = value;
}

/** The input the declared flags describe, from commander's parsed options. */
export function inputFrom(
  specs: readonly FlagSpec[],
  opts: Record<string, unknown>,
): Record<string, unknown> {
  const input: Record<string, unknown> = {};
  for (const spec of specs) {
    if (!spec.field) continue;
    const raw = opts[attributeOf(spec)];
    if (raw === undefined || raw === false) continue;
    setPath(input, spec.field, spec.value !== undefined && raw === true ? spec.value : raw);
  }
  return input;
}

/** The long flag of a spec, as people type it (`--instance-timeout`). */
export function longFlag(spec: FlagSpec): string {
  return new Option(spec.flags).long ?? spec.flags;
}

/**
 * Names an input field by the flag that fills it: `timeouts.instanceStateSeconds` → `--instance-timeout`,
 * `regions.1` → `--region #2`, `destinations[0].accountId` → `--to #1 account`, `tags.owner` → `--tag owner`.
 */
export function flagForField(
  specs: readonly FlagSpec[],
  field: string,
  extra: Record<string, string> = {},
): string {
  if (extra[field]) return extra[field];
  let best: FlagSpec | undefined;
  for (const spec of specs)
    if (
      spec.field &&
      (field === spec.field || field.startsWith(`${spec.field}.`) || field.startsWith(`${spec.field}[`)) &&
      spec.field.length > (best?.field?.length ?? -1)
    )
      best = spec;
  if (!best?.field) return field;
  const rest = field.slice(best.field.length);
  const indexed = /^(?:\[(\d+)\]|\.(\d+))(?:\.?(.*))?$/.exec(rest);
  if (indexed) {
    const n = Number(indexed[1] ?? indexed[2]) + 1;
    const sub = indexed[3] ? ` ${best.subfields?.[indexed[3]] ?? indexed[3]}` : '';
    return `${longFlag(best)} #${n}${sub}`;
  }
  return rest ? `${longFlag(best)} ${rest.replace(/^\./, '')}` : longFlag(best);
}

/** Throws InvalidInputError with each issue's field named by its flag; does nothing when none. */
export function refuse(
  specs: readonly FlagSpec[],
  issues: readonly InputIssue[],
  extra: Record<string, string> = {},
): void {
  if (issues.length)
    throw new InvalidInputError(issues.map((i) => ({ ...i, field: flagForField(specs, i.field, extra) })));
}

// ---------------------------------------------------------------------------------------------
// Flags several commands share
// ---------------------------------------------------------------------------------------------

export const REGION: FlagSpec = {
  flags: '--region <region>',
  help: 'AWS region of the source',
  field: 'region',
  env: 'AWS_REGION',
};
export const ACCOUNT: FlagSpec = {
  flags: '--account <12 digits>',
  help: "AWS account that owns it (default: the worker's own)",
  field: 'accountId',
};
export const TAG: FlagSpec = {
  flags: '--tag <key=value>',
  help: 'tag to add (repeatable)',
  field: 'tags',
  parse: parseTag,
};

/** `--id`, `--watch`, `--no-wait`: how a command that starts a run follows it. */
export const FOLLOW_FLAGS: readonly FlagSpec[] = [
  { flags: '--id <workflow id>', help: 'workflow id (default: deterministic from the input)' },
  { flags: '--watch', help: 'show the steps live until the run ends' },
  { flags: '--no-wait', help: 'return once started (prints the workflow id)' },
];

export interface FollowOptions {
  id?: string;
  watch: boolean;
  wait: boolean;
}

/** `--watch` with `--no-wait` is a problem reported with the input's others. */
export function followIssues(opts: { watch?: unknown; wait?: unknown }): InputIssue[] {
  return opts.watch === true && opts.wait === false
    ? [
        {
          field: '--watch',
          message: 'excludes --no-wait (the two exclude each other: follow the run, or return at once)',
        },
      ]
    : [];
}

export function followOptions(opts: { id?: unknown; watch?: unknown; wait?: unknown }): FollowOptions {
  return {
    ...(typeof opts.id === 'string' && opts.id ? { id: opts.id } : {}),
    watch: opts.watch === true,
    wait: opts.wait !== false,
  };
}

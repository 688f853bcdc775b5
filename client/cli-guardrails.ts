/**
 * The CLI's guardrail commands: the approved-image catalogue, compliance scans and their reports,
 * EC2 Allowed AMIs enforcement, and the IAM and KMS policy statements to review. Flags are parsed
 * and validated (naming the flag) before anything connects.
 */
import { readFileSync } from 'node:fs';
import type { ParseArgsConfig } from 'node:util';
import { parseArgs } from 'node:util';
import { parse as parseYaml } from 'yaml';
import type {
  AllowListEntry,
  AllowedAmisMode,
  CatalogueInput,
  ComplianceReport,
  ComplianceScanInput,
  EnforceAllowedAmisInput,
} from '../workflows/contracts';
import { ALLOWED_AMIS_MODES } from '../workflows/contracts';
import {
  allowListIssues,
  catalogueInputIssues,
  checkName,
  complianceScanIssues,
  enforceAllowedAmisIssues,
} from '../workflows/guardrails-validation';
import type { InputIssue } from '../workflows/validation';
import { InvalidInputError, checkAccountId, checkRegion } from '../workflows/validation';
import type { AmiflowClient } from './index';
import { keyPolicies, launchPolicies } from './policies';
import { formatCatalogue, formatComplianceReport, formatEnforcement } from './report';

export const GUARDRAILS_USAGE = `  amiflow catalogue list --region <region>… [--account <12 digits|self>]… [--pipeline <name>]…
                         [--allow-list <file>] [--json]
  amiflow catalogue resolve --pipeline <name> --region <region> [--account <12 digits|self>] [--json]
  amiflow compliance scan --name <name> --region <region>… [--account <12 digits|self>]…
                          [--catalogue-account <12 digits|self>]… [--pipeline <name>]… [--allow-list <file>]
                          [--concurrency <n>] [--max-findings <n>] [--no-wait] [--strict] [--json]
  amiflow compliance schedule <the scan flags> (--every <24h|6h|…> | --cron '<expr>'…) [--time-zone <tz>]
  amiflow compliance report --name <name> [--running] [--strict] [--json]
  amiflow guardrails enforce --name <name> --mode audit|enabled|off --region <region>… [--account …]…
                             [--catalogue-account …]… [--pipeline <name>]… [--allow-list <file>] [--json]
  amiflow guardrails status --name <name> [--json]
  amiflow guardrails policy (--iam | --kms) --region <region>… [--catalogue-account …]… [--pipeline <name>]…
                            [--allow-list <file>] [--account <12 digits>]… [--include-deprecated]
                            [--amiflow-role <role ARN>]… [--json]`;

/** Exit code of `--strict` scans and reports that are not compliant. */
export const NOT_COMPLIANT_EXIT = 3;

const FLAGS: Record<string, string> = {
  name: '--name',
  regions: '--region',
  accounts: '--account',
  catalogueAccounts: '--catalogue-account',
  pipelines: '--pipeline',
  concurrency: '--concurrency',
  maxFindingsPerTarget: '--max-findings',
};

/** `regions.1` → `--region #2`; `allowList.0.reason` → `--allow-list <file>: entry 1: reason`. */
function flagFor(field: string, allowListFile?: string): string {
  const [head = '', index, ...rest] = field.split('.');
  if (head === 'allowList')
    return `--allow-list ${allowListFile ?? ''}${index !== undefined ? `: entry ${Number(index) + 1}${rest.length ? `: ${rest.join('.')}` : ''}` : ''}`;
  const flag = FLAGS[head] ?? field;
  return index !== undefined && /^\d+$/.test(index) ? `${flag} #${Number(index) + 1}` : flag;
}

/** Reads an allow list: a JSON or YAML list of entries, or an object whose `allowList` is that list. */
export function readAllowList(file: string): AllowListEntry[] {
  let text: string;
  try {
    text = readFileSync(file, 'utf8');
  } catch (err) {
    throw new InvalidInputError([
      {
        field: `--allow-list ${file}`,
        message: `cannot be read: ${err instanceof Error ? err.message : String(err)}`,
      },
    ]);
  }
  let doc: unknown;
  try {
    doc = /\.ya?ml$/i.test(file) ? parseYaml(text) : JSON.parse(text);
  } catch (err) {
    throw new InvalidInputError([
      {
        field: `--allow-list ${file}`,
        message: `is not valid ${/\.ya?ml$/i.test(file) ? 'YAML' : 'JSON'}: ${err instanceof Error ? err.message : String(err)}`,
      },
    ]);
  }
  const list =
    typeof doc === 'object' && doc !== null && !Array.isArray(doc) && 'allowList' in doc
      ? doc.allowList
      : doc;
  const issues = allowListIssues(list);
  if (issues.length)
    throw new InvalidInputError(issues.map((i) => ({ ...i, field: flagFor(i.field, file) })));
  return list as AllowListEntry[];
}

const SCOPE_OPTIONS = {
  name: { type: 'string' },
  region: { type: 'string', multiple: true },
  account: { type: 'string', multiple: true },
  'catalogue-account': { type: 'string', multiple: true },
  pipeline: { type: 'string', multiple: true },
  'allow-list': { type: 'string' },
  concurrency: { type: 'string' },
  json: { type: 'boolean', default: false },
} as const;

type Values = Record<string, string | boolean | string[] | undefined>;

function parse(argv: string[], options: NonNullable<ParseArgsConfig['options']>) {
  const { values, positionals } = parseArgs({ args: argv, allowPositionals: true, strict: true, options });
  const issues: InputIssue[] = [];
  if (positionals.length)
    issues.push({ field: '(arguments)', message: `unexpected argument '${positionals[0]}'` });
  return { values: values as Values, issues };
}

function list(v: Values, flag: string): string[] | undefined {
  const x = v[flag];
  return Array.isArray(x) && x.length ? x : undefined;
}

function str(v: Values, flag: string): string | undefined {
  const x = v[flag];
  return typeof x === 'string' ? x : undefined;
}

function whole(v: Values, flag: string, issues: InputIssue[]): number | undefined {
  const raw = str(v, flag);
  if (raw === undefined) return undefined;
  const n = Number(raw);
  if (raw.trim() === '' || !Number.isInteger(n)) {
    issues.push({ field: `--${flag}`, message: `'${raw}' is not a whole number` });
    return undefined;
  }
  return n;
}

/** The fields every guardrail command shares, from their flags. */
function scopeOf(v: Values, issues: InputIssue[]) {
  const file = str(v, 'allow-list');
  const concurrency = whole(v, 'concurrency', issues);
  return {
    regions: list(v, 'region') ?? [],
    ...(list(v, 'account') ? { accounts: list(v, 'account') } : {}),
    ...(list(v, 'catalogue-account') ? { catalogueAccounts: list(v, 'catalogue-account') } : {}),
    ...(list(v, 'pipeline') ? { pipelines: list(v, 'pipeline') } : {}),
    ...(file ? { allowList: readAllowList(file) } : {}),
    ...(concurrency !== undefined ? { concurrency } : {}),
  };
}

function refuse(issues: InputIssue[], more: InputIssue[], file?: string): void {
  issues.push(...more.map((i) => ({ ...i, field: flagFor(i.field, file) })));
  if (issues.length) throw new InvalidInputError(issues);
}

export type GuardrailsCommand =
  | { kind: 'catalogue-list'; input: CatalogueInput; json: boolean }
  | { kind: 'catalogue-resolve'; pipeline: string; region: string; accountId?: string; json: boolean }
  | { kind: 'scan'; input: ComplianceScanInput; wait: boolean; strict: boolean; json: boolean }
  | { kind: 'schedule'; input: ComplianceScanInput; every?: string; cron?: string[]; timeZone?: string }
  | { kind: 'report'; name: string; running: boolean; strict: boolean; json: boolean }
  | { kind: 'enforce'; input: EnforceAllowedAmisInput; mode: AllowedAmisMode; json: boolean }
  | { kind: 'status'; name: string; json: boolean }
  | {
      kind: 'policy';
      input: CatalogueInput;
      what: 'iam' | 'kms';
      targetAccounts: string[];
      includeDeprecated: boolean;
      amiflowRoleArns: string[];
      json: boolean;
    };

/** True for the commands this file handles. */
export function isGuardrailsCommand(cmd: string | undefined, sub: string | undefined): boolean {
  const subs: Record<string, string[]> = {
    catalogue: ['list', 'resolve'],
    compliance: ['scan', 'schedule', 'report'],
    guardrails: ['enforce', 'status', 'policy'],
  };
  return !!cmd && !!sub && (subs[cmd]?.includes(sub) ?? false);
}

function scanInput(v: Values, issues: InputIssue[]): ComplianceScanInput {
  const maxFindings = whole(v, 'max-findings', issues);
  const { catalogueAccounts, ...scope } = scopeOf(v, issues);
  const input: ComplianceScanInput = {
    name: str(v, 'name') ?? '',
    ...scope,
    ...(catalogueAccounts ? { catalogueAccounts } : {}),
    ...(maxFindings !== undefined ? { maxFindingsPerTarget: maxFindings } : {}),
  };
  refuse(issues, complianceScanIssues(input), str(v, 'allow-list'));
  return input;
}

/** Parses a guardrail command's flags; throws InvalidInputError naming the flags. */
export function parseGuardrails(cmd: string, sub: string, argv: string[]): GuardrailsCommand {
  const key = `${cmd} ${sub}`;
  if (key === 'catalogue list') {
    const { name: _name, 'catalogue-account': _catalogue, ...options } = SCOPE_OPTIONS;
    const { values, issues } = parse(argv, options);
    const { accounts, ...scope } = scopeOf(values, issues);
    const input: CatalogueInput = { ...scope, ...(accounts ? { accounts } : {}) };
    refuse(issues, catalogueInputIssues(input), str(values, 'allow-list'));
    return { kind: 'catalogue-list', input, json: values.json === true };
  }
  if (key === 'catalogue resolve') {
    const { values, issues } = parse(argv, {
      pipeline: { type: 'string' },
      region: { type: 'string' },
      account: { type: 'string' },
      json: { type: 'boolean', default: false },
    });
    const pipeline = str(values, 'pipeline') ?? '';
    const region = str(values, 'region') ?? '';
    const account = str(values, 'account');
    if (!pipeline) issues.push({ field: '--pipeline', message: 'is required' });
    checkRegion(issues, '--region', region);
    if (account !== undefined && account !== 'self') checkAccountId(issues, '--account', account);
    refuse(issues, []);
    return {
      kind: 'catalogue-resolve',
      pipeline,
      region,
      ...(account && account !== 'self' ? { accountId: account } : {}),
      json: values.json === true,
    };
  }
  if (key === 'compliance scan') {
    const { values, issues } = parse(argv, {
      ...SCOPE_OPTIONS,
      'max-findings': { type: 'string' },
      'no-wait': { type: 'boolean', default: false },
      strict: { type: 'boolean', default: false },
    });
    const input = scanInput(values, issues);
    return {
      kind: 'scan',
      input,
      wait: values['no-wait'] !== true,
      strict: values.strict === true,
      json: values.json === true,
    };
  }
  if (key === 'compliance schedule') {
    const { values, issues } = parse(argv, {
      ...SCOPE_OPTIONS,
      'max-findings': { type: 'string' },
      every: { type: 'string' },
      cron: { type: 'string', multiple: true },
      'time-zone': { type: 'string' },
    });
    const every = str(values, 'every');
    const cron = list(values, 'cron');
    if (!every === !cron) issues.push({ field: '--every', message: 'or --cron: give exactly one' });
    else if (every !== undefined && !/^\d+(s|m|h|d)$/.test(every))
      issues.push({ field: '--every', message: `'${every}' is not a duration such as 30m, 6h or 1d` });
    const input = scanInput(values, issues);
    const timeZone = str(values, 'time-zone');
    return {
      kind: 'schedule',
      input,
      ...(every ? { every } : {}),
      ...(cron ? { cron } : {}),
      ...(timeZone ? { timeZone } : {}),
    };
  }
  if (key === 'compliance report' || key === 'guardrails status') {
    const { values, issues } = parse(argv, {
      name: { type: 'string' },
      running: { type: 'boolean', default: false },
      strict: { type: 'boolean', default: false },
      json: { type: 'boolean', default: false },
    });
    const name = str(values, 'name') ?? '';
    checkName(issues, '--name', name);
    if (key === 'guardrails status' && (values.running || values.strict))
      issues.push({ field: '--running', message: 'and --strict apply to compliance report only' });
    refuse(issues, []);
    return key === 'guardrails status'
      ? { kind: 'status', name, json: values.json === true }
      : {
          kind: 'report',
          name,
          running: values.running === true,
          strict: values.strict === true,
          json: values.json === true,
        };
  }
  if (key === 'guardrails enforce') {
    const { values, issues } = parse(argv, { ...SCOPE_OPTIONS, mode: { type: 'string' } });
    const mode = str(values, 'mode');
    if (!ALLOWED_AMIS_MODES.includes(mode as AllowedAmisMode))
      issues.push({
        field: '--mode',
        message: `${mode === undefined ? 'is required' : `'${mode}' is not a mode`}: ${ALLOWED_AMIS_MODES.join(', ')} (audit first, then enabled; off restores)`,
      });
    const name = str(values, 'name') ?? '';
    if (mode === 'off') {
      // Off restores whatever the enforcement covers: only its name counts.
      checkName(issues, '--name', name);
      refuse(issues, []);
      return { kind: 'enforce', input: { name, regions: [] }, mode, json: values.json === true };
    }
    const input: EnforceAllowedAmisInput = { name, ...scopeOf(values, issues) };
    refuse(issues, enforceAllowedAmisIssues(input), str(values, 'allow-list'));
    return { kind: 'enforce', input, mode: mode as AllowedAmisMode, json: values.json === true };
  }
  if (key === 'guardrails policy') {
    const { name: _name, ...scopeOptions } = SCOPE_OPTIONS;
    const { values, issues } = parse(argv, {
      ...scopeOptions,
      iam: { type: 'boolean', default: false },
      kms: { type: 'boolean', default: false },
      'include-deprecated': { type: 'boolean', default: false },
      'amiflow-role': { type: 'string', multiple: true },
    });
    const amiflowRoleArns = list(values, 'amiflow-role') ?? [];
    amiflowRoleArns.forEach((arn, i) => {
      if (!/^arn:aws[a-z-]*:iam::\d{12}:role\/.+$/.test(arn))
        issues.push({ field: `--amiflow-role #${i + 1}`, message: `'${arn}' is not an IAM role ARN` });
    });
    if (values.kms === true && amiflowRoleArns.length)
      issues.push({ field: '--amiflow-role', message: 'applies to --iam only' });
    if (values.iam === values.kms) issues.push({ field: '--iam', message: 'or --kms: give exactly one' });
    const { accounts, catalogueAccounts, ...scope } = scopeOf(values, issues);
    const targetAccounts = accounts ?? [];
    targetAccounts.forEach((a, i) => checkAccountId(issues, `--account #${i + 1}`, a));
    if (values.kms === true && targetAccounts.length === 0)
      issues.push({
        field: '--account',
        message: 'is required with --kms: the 12-digit accounts that launch the images',
      });
    const input: CatalogueInput = { ...scope, ...(catalogueAccounts ? { accounts: catalogueAccounts } : {}) };
    refuse(
      issues,
      catalogueInputIssues(input).map((i) =>
        i.field.startsWith('accounts') ? { ...i, field: `catalogueAccounts${i.field.slice(8)}` } : i,
      ),
      str(values, 'allow-list'),
    );
    return {
      kind: 'policy',
      input,
      what: values.kms === true ? 'kms' : 'iam',
      targetAccounts,
      includeDeprecated: values['include-deprecated'] === true,
      amiflowRoleArns,
      json: values.json === true,
    };
  }
  throw new InvalidInputError([{ field: '(command)', message: `unknown command '${key}'` }]);
}

function print(json: boolean, value: unknown, text: () => string): void {
  console.log(json ? JSON.stringify(value, null, 2) : text());
}

export async function runGuardrails(client: AmiflowClient, c: GuardrailsCommand): Promise<number> {
  switch (c.kind) {
    case 'catalogue-list': {
      const catalogue = await client.listApprovedImages(c.input);
      print(c.json, catalogue, () => formatCatalogue(catalogue));
      return 0;
    }
    case 'catalogue-resolve': {
      const image = await client.resolveApprovedImage(
        c.pipeline,
        c.region,
        c.accountId ? { accountId: c.accountId } : {},
      );
      print(c.json, image, () => image.imageId);
      return 0;
    }
    case 'scan': {
      const started = await client.startComplianceScan(c.input);
      console.error(`started ${started.workflowId} (run ${started.runId})`);
      if (!c.wait) {
        if (c.json) console.log(JSON.stringify(started));
        return 0;
      }
      const report = await client.result<ComplianceReport>(started.workflowId);
      print(c.json, report, () => formatComplianceReport(report));
      return c.strict && !report.compliant ? NOT_COMPLIANT_EXIT : 0;
    }
    case 'schedule': {
      const { scheduleId } = await client.scheduleComplianceScan(c.input, {
        ...(c.every ? { every: c.every } : {}),
        ...(c.cron ? { cron: c.cron } : {}),
        ...(c.timeZone ? { timeZone: c.timeZone } : {}),
      });
      console.log(
        `schedule ${scheduleId} created (${c.every ? `every ${c.every}` : `cron ${c.cron?.join(', ')}`}); ` +
          `the last report: amiflow compliance report --name ${c.input.name}`,
      );
      return 0;
    }
    case 'report': {
      const report = c.running
        ? await client.runningComplianceReport(c.name)
        : await client.lastComplianceReport(c.name);
      if (!report) {
        console.error(
          c.running
            ? `amiflow: no scan named '${c.name}' is running; the last report: amiflow compliance report --name ${c.name}`
            : `amiflow: no completed scan named '${c.name}' (within the namespace's retention); ` +
                `a running one's report so far: amiflow compliance report --name ${c.name} --running`,
        );
        return 1;
      }
      print(c.json, report, () => formatComplianceReport(report));
      return c.strict && !report.compliant ? NOT_COMPLIANT_EXIT : 0;
    }
    case 'enforce': {
      const state = await client.setAllowedAmisMode(c.input, c.mode);
      print(c.json, state, () => formatEnforcement(state));
      return state.targets.some((t) => t.error !== undefined) ? 1 : 0;
    }
    case 'status': {
      const state = await client.allowedAmisState(c.name);
      if (!state) {
        console.error(`amiflow: no enforcement named '${c.name}' is in place`);
        return 1;
      }
      print(c.json, state, () => formatEnforcement(state));
      return 0;
    }
    case 'policy': {
      const catalogue = await client.listApprovedImages(c.input);
      const opts = { includeDeprecated: c.includeDeprecated, amiflowRoleArns: c.amiflowRoleArns };
      const out =
        c.what === 'iam' ? launchPolicies(catalogue, opts) : keyPolicies(catalogue, c.targetAccounts, opts);
      print(c.json, out, () =>
        [
          '# For review: amiflow does not apply these. Read, adapt, attach.',
          ...out.notes.map((n) => `# - ${n}`),
          JSON.stringify(out, null, 2),
        ].join('\n'),
      );
      return 0;
    }
  }
}

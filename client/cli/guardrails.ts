/**
 * `amiflow catalogue …`, `amiflow compliance …`, `amiflow guardrails …`: the approved-image
 * catalogue, compliance scans and their reports, EC2 Allowed AMIs enforcement, and the IAM and KMS
 * policy statements to review. Flags are declared once below and validated (naming the flag)
 * before anything connects.
 */
import { readFileSync } from 'node:fs';
import type { Command } from 'commander';
import { parse as parseYaml } from 'yaml';
import type {
  AllowListEntry,
  AllowedAmisMode,
  CatalogueInput,
  ComplianceReport,
  ComplianceScanInput,
  EnforceAllowedAmisInput,
} from '../../contracts';
import { ALLOWED_AMIS_MODES, complianceScanInputSchema } from '../../contracts';
import {
  allowListIssues,
  catalogueInputIssues,
  checkName,
  complianceScanIssues,
  enforceAllowedAmisIssues,
} from '../../workflows/guardrails-validation';
import type { InputIssue } from '../../workflows/validation';
import { InvalidInputError, checkAccountId, checkRegion } from '../../workflows/validation';
import { keyPolicies, launchPolicies } from '../policies';
import { formatCatalogue, formatComplianceReport, formatEnforcement } from '../report';
import type { CliContext } from './context';
import { forTerminal } from '../trust-input';
import { checkScheduleInterval, readScheduleBounds } from '../bounds';
import { emit, emitCompleted, outputOf, withClient } from './context';
import type { FlagSpec } from './flags';
import { addFlags, durationText, inputFrom, parseDuration, refuse, schemaFlag } from './flags';

/** Exit code of `--strict` scans and reports that are not compliant. */
export const NOT_COMPLIANT_EXIT = 3;

/** Reads an allow list: a JSON or YAML list of entries, or an object whose `allowList` is that list. */
export function readAllowList(file: string): AllowListEntry[] {
  const field = `--allow-list ${file}`;
  const yaml = /\.ya?ml$/i.test(file);
  let text: string;
  try {
    text = readFileSync(file, 'utf8');
  } catch (err) {
    throw new InvalidInputError([
      { field, message: `cannot be read: ${err instanceof Error ? err.message : String(err)}` },
    ]);
  }
  let doc: unknown;
  try {
    doc = yaml ? parseYaml(text) : JSON.parse(text);
  } catch (err) {
    throw new InvalidInputError([
      {
        field,
        message: `is not valid ${yaml ? 'YAML' : 'JSON'}: ${err instanceof Error ? err.message : String(err)}`,
      },
    ]);
  }
  const list =
    typeof doc === 'object' && doc !== null && !Array.isArray(doc) && 'allowList' in doc
      ? doc.allowList
      : doc;
  const issues = allowListIssues(list);
  if (issues.length)
    throw new InvalidInputError(
      issues.map((i) => {
        // `allowList[1].imageId` → `entry 2: imageId`
        const [, index, rest] = /^allowList\[(\d+)\]\.?(.*)$/.exec(i.field) ?? [];
        const where = index !== undefined ? `: entry ${Number(index) + 1}${rest ? `: ${rest}` : ''}` : '';
        return { ...i, field: `${field}${where}` };
      }),
    );
  return list as AllowListEntry[];
}

// Help, repetition and parsing come from the scan's input schema (contracts/guardrails.ts).
const scan = (flags: string, field: string, more?: Partial<FlagSpec>) =>
  schemaFlag(flags, complianceScanInputSchema, field, more);
const NAME = scan('--name <name>', 'name');
const REGIONS = scan('--region <region>', 'regions');
const ACCOUNTS = scan('--account <12 digits|self>', 'accounts');
const CATALOGUE_ACCOUNTS = scan('--catalogue-account <12 digits|self>', 'catalogueAccounts');
const PIPELINES = scan('--pipeline <name>', 'pipelines');
const ALLOW_LIST = scan('--allow-list <file>', 'allowList', { parse: readAllowList });
const CONCURRENCY = scan('--concurrency <n>', 'concurrency');
const MAX_FINDINGS = scan('--max-findings <n>', 'maxFindingsPerTarget');

const CATALOGUE_LIST: readonly FlagSpec[] = [REGIONS, ACCOUNTS, PIPELINES, ALLOW_LIST, CONCURRENCY];
/** Where a scan or an enforcement acts, and against which catalogue. */
const TARGETS: readonly FlagSpec[] = [
  REGIONS,
  ACCOUNTS,
  CATALOGUE_ACCOUNTS,
  PIPELINES,
  ALLOW_LIST,
  CONCURRENCY,
];
const SCAN: readonly FlagSpec[] = [NAME, ...TARGETS, MAX_FINDINGS];
const SCHEDULE: readonly FlagSpec[] = [
  ...SCAN,
  { flags: '--every <duration>', help: 'run every (e.g. 6h, 1d)', parse: parseDuration },
  { flags: '--cron <expr>', help: 'cron expression (repeatable)', repeat: true },
  { flags: '--time-zone <tz>', help: 'time zone of the cron expressions (IANA name)' },
];
const ENFORCE: readonly FlagSpec[] = [
  NAME,
  { flags: '--mode <mode>', help: 'audit first, then enabled; off restores', choices: ALLOWED_AMIS_MODES },
  ...TARGETS,
];
const POLICY: readonly FlagSpec[] = [
  { flags: '--iam', help: 'launch policies for the accounts that use the images' },
  { flags: '--kms', help: 'key policy statements for the keys of the images' },
  REGIONS,
  { ...CATALOGUE_ACCOUNTS, field: 'accounts' },
  PIPELINES,
  ALLOW_LIST,
  {
    flags: '--account <12 digits>',
    help: 'account that launches the images (repeatable; needed with --kms)',
    repeat: true,
  },
  { flags: '--include-deprecated', help: 'also allow deprecated approved images' },
  {
    flags: '--amiflow-role <role ARN>',
    help: "amiflow's role, exempted from the launch policy (repeatable; --iam)",
    repeat: true,
  },
];

type Opts = Record<string, unknown>;

function scanInput(opts: Opts, issues: InputIssue[] = []): ComplianceScanInput {
  const input = { regions: [], ...inputFrom(SCAN, opts) } as unknown as ComplianceScanInput;
  refuse(SCAN, [...issues, ...complianceScanIssues(input)]);
  return input;
}

function registerCatalogue(program: Command, ctx: CliContext): void {
  const catalogue = program.command('catalogue').description('the approved-image catalogue');
  addFlags(catalogue.command('list').description('list approved images'), CATALOGUE_LIST).action(
    async (opts: Opts, cmd: Command) => {
      const input = { regions: [], ...inputFrom(CATALOGUE_LIST, opts) } as unknown as CatalogueInput;
      refuse(CATALOGUE_LIST, catalogueInputIssues(input));
      const output = outputOf(cmd);
      await withClient(ctx, async (client) => {
        const list = await client.listApprovedImages(input);
        emit(output, list, () => formatCatalogue(list));
        return 0;
      });
    },
  );
  catalogue
    .command('resolve')
    .description('the current approved image of a pipeline in a region (what a launch should use)')
    .option('--pipeline <name>', 'golden pipeline')
    .option('--region <region>', 'region')
    .option('--account <12 digits|self>', 'account the image is read in')
    .action(async (opts: { pipeline?: string; region?: string; account?: string }, cmd: Command) => {
      const issues: InputIssue[] = [];
      const pipeline = opts.pipeline ?? '';
      const region = opts.region ?? '';
      if (!pipeline) issues.push({ field: '--pipeline', message: 'is required' });
      checkRegion(issues, '--region', region);
      if (opts.account !== undefined && opts.account !== 'self')
        checkAccountId(issues, '--account', opts.account);
      if (issues.length) throw new InvalidInputError(issues);
      const output = outputOf(cmd);
      await withClient(ctx, async (client) => {
        const accountId = opts.account && opts.account !== 'self' ? opts.account : undefined;
        const image = await client.resolveApprovedImage(pipeline, region, accountId ? { accountId } : {});
        emit(output, image, () => image.imageId);
        return 0;
      });
    });
}

function registerCompliance(program: Command, ctx: CliContext): void {
  const compliance = program.command('compliance').description('compliance scans of running instances');
  addFlags(compliance.command('scan').description('scan instances against the catalogue'), SCAN)
    .option('--no-wait', 'return once started')
    .option('--strict', `exit ${NOT_COMPLIANT_EXIT} when not compliant`)
    .action(async (opts: Opts, cmd: Command) => {
      const input = scanInput(opts);
      const output = outputOf(cmd);
      await withClient(ctx, async (client) => {
        const started = await client.startComplianceScan(input);
        console.error(forTerminal(`started ${started.workflowId} (run ${started.runId})`));
        if (opts.wait === false) {
          emit(output, started, () => started.workflowId);
          return 0;
        }
        const report = await client.result<ComplianceReport>(started.workflowId);
        await emitCompleted(ctx, client, started.workflowId, output, report, () =>
          formatComplianceReport(report),
        );
        return opts.strict === true && !report.compliant ? NOT_COMPLIANT_EXIT : 0;
      });
    });
  addFlags(
    compliance.command('schedule').description('scan on a schedule (--every or --cron)'),
    SCHEDULE,
  ).action(async (opts: { every?: number; cron?: string[]; timeZone?: string } & Opts, cmd: Command) => {
    const issues: InputIssue[] =
      (opts.every === undefined) === (opts.cron === undefined)
        ? [{ field: '--every', message: 'or --cron: give exactly one' }]
        : [];
    if (opts.timeZone !== undefined && !isTimeZone(opts.timeZone))
      issues.push({
        field: '--time-zone',
        message: `'${opts.timeZone}' is not an IANA time zone (e.g. Europe/Berlin)`,
      });
    const input = scanInput(opts, issues);
    // The operator's shortest interval is checked here too, before connecting, naming the flag.
    checkScheduleInterval(
      readScheduleBounds(),
      'complianceScan',
      {
        ...(opts.every !== undefined ? { everySeconds: opts.every } : {}),
        ...(opts.cron ? { cron: opts.cron } : {}),
      },
      opts.every !== undefined ? '--every' : '--cron',
    );
    const spec = {
      ...(opts.every !== undefined ? { every: durationText(opts.every) } : {}),
      ...(opts.cron ? { cron: opts.cron } : {}),
      ...(opts.timeZone ? { timeZone: opts.timeZone } : {}),
    };
    const output = outputOf(cmd);
    await withClient(ctx, async (client) => {
      const { scheduleId } = await client.scheduleComplianceScan(input, spec);
      emit(
        output,
        { scheduleId, ...spec },
        () =>
          `schedule ${scheduleId} created (${spec.every ? `every ${spec.every}` : `cron ${spec.cron?.join(', ') ?? ''}`}); ` +
          `the last report: amiflow compliance report --name ${input.name}`,
      );
      return 0;
    });
  });
  compliance
    .command('report')
    .description('the last report of a named scan (nothing scanned again)')
    .option('--name <name>', 'name of the scan')
    .option('--running', 'the report so far of the scan running now')
    .option('--strict', `exit ${NOT_COMPLIANT_EXIT} when not compliant`)
    .action(async (opts: { name?: string; running?: boolean; strict?: boolean }, cmd: Command) => {
      const name = checkedName(opts.name);
      const output = outputOf(cmd);
      await withClient(ctx, async (client) => {
        const report = opts.running
          ? await client.runningComplianceReport(name)
          : await client.lastComplianceReport(name);
        if (!report)
          throw new NotFoundError(
            opts.running
              ? `no scan named '${name}' is running; the last report: amiflow compliance report --name ${name}`
              : `no completed scan named '${name}' (within the namespace's retention); ` +
                  `a running one's report so far: amiflow compliance report --name ${name} --running`,
          );
        emit(output, report, () => formatComplianceReport(report));
        return opts.strict === true && !report.compliant ? NOT_COMPLIANT_EXIT : 0;
      });
    });
}

/** Something asked for by name is not there: exit 1, said as such (and as JSON under --output json). */
export class NotFoundError extends Error {
  override name = 'NotFoundError';
}

function checkedName(raw: string | undefined): string {
  const issues: InputIssue[] = [];
  const name = raw ?? '';
  checkName(issues, '--name', name);
  if (issues.length) throw new InvalidInputError(issues);
  return name;
}

function enforceInput(opts: Opts): { input: EnforceAllowedAmisInput; mode: AllowedAmisMode } {
  const mode = opts.mode as string | undefined;
  const issues: InputIssue[] = [];
  if (!ALLOWED_AMIS_MODES.includes(mode as AllowedAmisMode))
    issues.push({
      field: '--mode',
      message: `${mode === undefined ? 'is required' : `'${mode}' is not a mode`}: ${ALLOWED_AMIS_MODES.join(', ')} (audit first, then enabled; off restores)`,
    });
  if (mode === 'off') {
    // Off restores whatever the enforcement covers: only its name counts.
    const name = (opts.name as string | undefined) ?? '';
    checkName(issues, '--name', name);
    if (issues.length) throw new InvalidInputError(issues);
    return { input: { name, regions: [] }, mode };
  }
  const input = { name: '', regions: [], ...inputFrom(ENFORCE, opts) } as unknown as EnforceAllowedAmisInput;
  refuse(ENFORCE, [...issues, ...enforceAllowedAmisIssues(input)]);
  return { input, mode: mode as AllowedAmisMode };
}

interface PolicyOpts {
  iam?: boolean;
  kms?: boolean;
  account?: string[];
  amiflowRole?: string[];
  includeDeprecated?: boolean;
}

function policyInput(opts: PolicyOpts & Opts): {
  input: CatalogueInput;
  targetAccounts: string[];
  roles: string[];
} {
  const issues: InputIssue[] = [];
  const roles = opts.amiflowRole ?? [];
  roles.forEach((arn, i) => {
    if (!/^arn:aws[a-z-]*:iam::\d{12}:role\/.+$/.test(arn))
      issues.push({ field: `--amiflow-role #${i + 1}`, message: `'${arn}' is not an IAM role ARN` });
  });
  if (opts.kms === true && roles.length)
    issues.push({ field: '--amiflow-role', message: 'applies to --iam only' });
  if ((opts.iam === true) === (opts.kms === true))
    issues.push({ field: '--iam', message: 'or --kms: give exactly one' });
  const targetAccounts = opts.account ?? [];
  targetAccounts.forEach((a, i) => checkAccountId(issues, `--account #${i + 1}`, a));
  if (opts.kms === true && targetAccounts.length === 0)
    issues.push({
      field: '--account',
      message: 'is required with --kms: the 12-digit accounts that launch the images',
    });
  const input = { regions: [], ...inputFrom(POLICY, opts) } as unknown as CatalogueInput;
  refuse(POLICY, [...issues, ...catalogueInputIssues(input)]);
  return { input, targetAccounts, roles };
}

function registerGuardrails(program: Command, ctx: CliContext): void {
  const guardrails = program
    .command('guardrails')
    .description('EC2 Allowed AMIs enforcement and policies to review');
  addFlags(
    guardrails
      .command('enforce')
      .description('set EC2 Allowed AMIs (audit, enabled, off) from the catalogue'),
    ENFORCE,
  ).action(async (opts: Opts, cmd: Command) => {
    const { input, mode } = enforceInput(opts);
    const output = outputOf(cmd);
    await withClient(ctx, async (client) => {
      const state = await client.setAllowedAmisMode(input, mode);
      emit(output, state, () => formatEnforcement(state));
      return state.targets.some((t) => t.error !== undefined) ? 1 : 0;
    });
  });
  guardrails
    .command('status')
    .description('the Allowed AMIs state a named enforcement put in place')
    .option('--name <name>', 'name of the enforcement')
    .action(async (opts: { name?: string }, cmd: Command) => {
      const name = checkedName(opts.name);
      const output = outputOf(cmd);
      await withClient(ctx, async (client) => {
        const state = await client.allowedAmisState(name);
        if (!state) throw new NotFoundError(`no enforcement named '${name}' is in place`);
        emit(output, state, () => formatEnforcement(state));
        return 0;
      });
    });
  addFlags(
    guardrails.command('policy').description('IAM or KMS policy statements for review (nothing applied)'),
    POLICY,
  ).action(async (opts: PolicyOpts & Opts, cmd: Command) => {
    const { input, targetAccounts, roles } = policyInput(opts);
    const output = outputOf(cmd);
    await withClient(ctx, async (client) => {
      const catalogue = await client.listApprovedImages(input);
      const o = { includeDeprecated: opts.includeDeprecated === true, amiflowRoleArns: roles };
      const out =
        opts.kms === true ? keyPolicies(catalogue, targetAccounts, o) : launchPolicies(catalogue, o);
      emit(output, out, () =>
        [
          '# For review: amiflow does not apply these. Read, adapt, attach.',
          ...out.notes.map((n) => `# - ${n}`),
          JSON.stringify(out, null, 2),
        ].join('\n'),
      );
      return 0;
    });
  });
}

export function registerGuardrailCommands(program: Command, ctx: CliContext): void {
  registerCatalogue(program, ctx);
  registerCompliance(program, ctx);
  registerGuardrails(program, ctx);
}

/** Whether the runtime's time-zone database knows `tz` (what Temporal's schedules accept). */
function isTimeZone(tz: string): boolean {
  try {
    new Intl.DateTimeFormat('en', { timeZone: tz });
    return tz.trim() !== '';
  } catch {
    return false;
  }
}

/**
 * Client side of sharing and copying: deterministic workflow ids (the same request started twice
 * runs once), static summaries for the Web UI, and the start call shared by every typed `start*`
 * method of `AmiflowClient`.
 */
import { createHash } from 'node:crypto';
import type { Client } from '@temporalio/client';
import { WorkflowExecutionAlreadyStartedError } from '@temporalio/client';
import { TypedSearchAttributes } from '@temporalio/common';
import type { CopyImageInput, ShareImageInput, UnshareImageInput } from '../contracts';
import { SearchAttr } from '../contracts';

function digest(value: unknown): string {
  return createHash('sha256').update(JSON.stringify(value)).digest('hex').slice(0, 12);
}

function sorted(list: string[] | undefined): string[] {
  return [...(list ?? [])].sort();
}

/** `share-image/<region>/<account|self>/<ami>/<digest of the targets and options>`. */
export function shareWorkflowId(input: ShareImageInput): string {
  const t = input.targets;
  return `share-image/${input.region}/${input.accountId ?? 'self'}/${input.imageId}/${digest({
    accounts: sorted(t.accountIds),
    orgs: sorted(t.organizationArns),
    ous: sorted(t.organizationalUnitArns),
    public: t.public === true,
    allowCopy: input.allowCopy === true,
    reencryptWith: input.reencryptWith ?? null,
  })}`;
}

/** `unshare-image/<share workflow id>/<share run id>`: one withdrawal per share run. */
export function unshareWorkflowId(input: UnshareImageInput): string {
  if (input.shareWorkflowId !== undefined)
    return `unshare-image/${input.shareWorkflowId}/${input.shareRunId ?? 'latest'}`;
  const s = input.share;
  return `unshare-image/${s?.image.region ?? ''}/${s?.image.accountId ?? 'self'}/${s?.sharedImageId ?? ''}/${digest(s?.added)}`;
}

/** `copy-image/<region>/<account|self>/<ami>/<digest of the destinations>`. */
export function copyWorkflowId(input: CopyImageInput): string {
  const dests = input.destinations
    .map((d) => `${d.accountId ?? input.accountId ?? 'self'}/${d.region}/${d.kmsKeyId ?? ''}/${d.name ?? ''}`)
    .sort();
  return `copy-image/${input.region}/${input.accountId ?? 'self'}/${input.imageId}/${digest(dests)}`;
}

/** A share run: its deterministic id, summary, and the image it is found by. */
export function shareRun(input: ShareImageInput): RunPlan {
  return { workflowId: shareWorkflowId(input), summary: shareSummary(input), attributes: imageOf(input) };
}

/** A copy run: its deterministic id, summary, and the image it is found by. */
export function copyRun(input: CopyImageInput): RunPlan {
  return { workflowId: copyWorkflowId(input), summary: copySummary(input), attributes: imageOf(input) };
}

function imageOf(input: { imageId: string; region: string }): RunAttributes {
  return { imageId: input.imageId, region: input.region };
}

export function shareSummary(input: ShareImageInput): string {
  const t = input.targets;
  const who = [
    ...(t.accountIds ?? []),
    ...(t.organizationArns ?? []).map((a) => a.split('/').pop() ?? a),
    ...(t.organizationalUnitArns ?? []).map((a) => a.split('/').pop() ?? a),
    ...(t.public ? ['everyone'] : []),
  ];
  const shown = who.length > 4 ? `${who.slice(0, 4).join(', ')} and ${who.length - 4} more` : who.join(', ');
  return (
    `Share ${input.imageId} (${input.region}) with ${shown}` +
    (input.durationSeconds !== undefined ? ` for ${formatSeconds(input.durationSeconds)}` : '')
  );
}

export function copySummary(input: CopyImageInput): string {
  const where = input.destinations.map((d) => (d.accountId ? `${d.region}/${d.accountId}` : d.region));
  const shown =
    where.length > 4 ? `${where.slice(0, 4).join(', ')} and ${where.length - 4} more` : where.join(', ');
  return `Copy ${input.imageId} (${input.region}) to ${shown}`;
}

export function formatSeconds(seconds: number): string {
  if (seconds % 86400 === 0) return `${seconds / 86400} d`;
  if (seconds % 3600 === 0) return `${seconds / 3600} h`;
  if (seconds % 60 === 0) return `${seconds / 60} min`;
  return `${seconds} s`;
}

/** The Amiflow* search attributes a run is found by: its region and the image or instance it is about. */
export interface RunAttributes {
  region: string;
  imageId?: string;
  instanceId?: string;
}

/** An amiflow workflow: one input, one result. */
export type AmiflowWorkflow<I, R> = (input: I) => Promise<R>;

/**
 * A start of `workflow`, the workflow function itself (imported from workflows/): the SDK takes its
 * type name from the function, and `input` must be its parameter's type, so an input of the wrong
 * type for that workflow does not compile (test/client/typed-starts.test.ts).
 */
/** What a typed start says about its run besides the workflow and its input. */
export interface RunPlan {
  /** The deterministic id, used unless the caller gave one (`StartOptions.workflowId`). */
  workflowId: string;
  summary: string;
  attributes?: RunAttributes;
  /** The refusal when a run with the id is in progress (default: startRun's). */
  inProgress?: (workflowId: string) => string;
}

export interface StartSpec<I, R> {
  workflow: AmiflowWorkflow<I, R>;
  input: I;
  workflowId: string;
  taskQueue: string;
  summary: string;
  /** Amiflow* search attributes, unless the namespace lacks them (`searchAttributes: false`). */
  searchAttributes?: RunAttributes;
  /** The refusal when a run with this id is in progress (default: the same request, and how to watch it). */
  inProgress?: string;
}

/** `{ searchAttributes: attributes }` unless the caller opted out (`searchAttributes: false`). */
export function runAttributes(
  opts: { searchAttributes?: boolean },
  attributes: RunAttributes,
): { searchAttributes?: RunAttributes } {
  return opts.searchAttributes === false ? {} : { searchAttributes: attributes };
}

/** How to follow a run already in progress. */
export function watchIt(workflowId: string): string {
  return `watch it with 'amiflow watch ${workflowId}'`;
}

function typedAttributes(a: RunAttributes): TypedSearchAttributes {
  return new TypedSearchAttributes([
    ...(a.imageId !== undefined ? [{ key: SearchAttr.imageId, value: a.imageId }] : []),
    ...(a.instanceId !== undefined ? [{ key: SearchAttr.instanceId, value: a.instanceId }] : []),
    { key: SearchAttr.region, value: a.region },
  ]);
}

/**
 * Starts a run: the one start call of every typed `start*` method of `AmiflowClient`. A run with
 * the same id still in progress is reported as such, with how to watch it.
 */
export async function startRun<I, R>(
  client: Client,
  spec: StartSpec<I, R>,
): Promise<{ workflowId: string; runId: string }> {
  try {
    const handle = await client.workflow.start(spec.workflow, {
      args: [spec.input],
      taskQueue: spec.taskQueue,
      workflowId: spec.workflowId,
      staticSummary: spec.summary,
      ...(spec.searchAttributes ? { typedSearchAttributes: typedAttributes(spec.searchAttributes) } : {}),
    });
    return { workflowId: spec.workflowId, runId: handle.firstExecutionRunId };
  } catch (err) {
    if (err instanceof WorkflowExecutionAlreadyStartedError)
      throw new Error(
        spec.inProgress ??
          `a run with id '${spec.workflowId}' is already in progress for the same request; ${watchIt(spec.workflowId)}`,
        { cause: err },
      );
    throw err;
  }
}

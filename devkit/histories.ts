/**
 * Recorded workflow histories for the replay tests (tier 4). The end-to-end tests save the history
 * of each run they make when AMIFLOW_RECORD_HISTORIES=1:
 *
 *   AMIFLOW_RECORD_HISTORIES=1 node scripts/run-tests.mjs test/e2e
 *
 * Files are Temporal's standard JSON history format (what `temporal workflow show --output json`
 * and the Web UI export), so a history downloaded from production replays the same way.
 * Re-record after an intended change to a workflow's commands, and replay the histories of runs
 * that may still be open in production against the new code before deploying it.
 */
import { mkdir, readFile, readdir, writeFile } from 'node:fs/promises';
import { createRequire } from 'node:module';
import path from 'node:path';
import type { WorkflowHandle } from '@temporalio/client';
import { historyFromJSON, historyToJSON } from '@temporalio/common/lib/proto-utils';
import * as proto from '@temporalio/proto';
import { patchProtobufRoot } from '@temporalio/proto/lib/patch-protobuf-root';
import { ROOT } from './tools';

export type History = proto.temporal.api.history.v1.IHistory;

export const HISTORIES_DIR = path.join(ROOT, 'test', 'replay', 'histories');
export const WORKFLOW_IDS_FILE = path.join(ROOT, 'test', 'replay', 'workflow-ids.json');

export function recordingHistories(): boolean {
  return process.env.AMIFLOW_RECORD_HISTORIES === '1';
}

/** Saves the run's history as `<name>.json` when recording is on; otherwise does nothing. */
export async function recordHistory(handle: WorkflowHandle, name: string): Promise<void> {
  if (!recordingHistories()) return;
  await saveHistory({ history: await handle.fetchHistory(), workflowId: handle.workflowId }, name);
}

/**
 * Saves a run a test already fetched the history of (the time-skipping tier's outcome helpers do)
 * as `<name>.json` when recording is on; otherwise does nothing. The workflow id goes to
 * WORKFLOW_IDS_FILE: the history format does not hold it, and workflows that derive child ids from
 * their own id only replay under the id they ran with.
 */
export async function saveHistory(
  run: { history: History; workflowId: string },
  name: string,
): Promise<void> {
  if (!recordingHistories()) return;
  await mkdir(HISTORIES_DIR, { recursive: true });
  await writeFile(path.join(HISTORIES_DIR, `${name}.json`), `${toJson(run.history)}\n`);
  const ids = { ...(await workflowIds()), [name]: run.workflowId };
  const sorted = Object.fromEntries(Object.entries(ids).sort(([a], [b]) => a.localeCompare(b)));
  await writeFile(WORKFLOW_IDS_FILE, `${JSON.stringify(sorted, null, 2)}\n`);
}

/** The workflow id each recorded run had, by file name (`<name>.json`). */
async function workflowIds(): Promise<Record<string, string>> {
  try {
    return JSON.parse(await readFile(WORKFLOW_IDS_FILE, 'utf8')) as Record<string, string>;
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === 'ENOENT') return {};
    throw err;
  }
}

export interface RecordedHistory {
  /** The file name without `.json`. */
  name: string;
  /** The id the run had (histories recorded before ids were kept replay under their name). */
  workflowId: string;
  history: History;
}

export async function loadHistories(dir: string = HISTORIES_DIR): Promise<RecordedHistory[]> {
  const files = (await readdir(dir)).filter((f) => f.endsWith('.json')).sort();
  const ids = await workflowIds();
  return Promise.all(
    files.map(async (file) => {
      const name = file.slice(0, -'.json'.length);
      return {
        name,
        workflowId: ids[name] ?? name,
        history: fromJson(JSON.parse(await readFile(path.join(dir, file), 'utf8'))),
      };
    }),
  );
}

/** The type of each event, without the `EVENT_TYPE_` prefix, e.g. `WORKFLOW_EXECUTION_COMPLETED`. */
export function eventTypes(history: History): string[] {
  const names = proto.temporal.api.enums.v1.EventType;
  return (history.events ?? []).map((e) => (names[e.eventType ?? 0] ?? '?').replace(/^EVENT_TYPE_/, ''));
}

// -----------------------------------------------------------------------------------------------
// @temporalio/common 1.24's historyToJSON / historyFromJSON throw "type must be a Type" when npm
// installs two copies of protobufjs 8 (one under @temporalio/common, one under @temporalio/proto,
// because @grpc/proto-loader keeps protobufjs 7 at the top level): protojson's `instanceof Type`
// check then compares types from different copies. When that happens, use the protojson of the
// copy that @temporalio/proto's types come from; it writes and reads the very same format.
// -----------------------------------------------------------------------------------------------

interface ProtoJson {
  toJson(type: unknown, message: unknown): unknown;
  fromJson(type: unknown, json: unknown, options: { ignoreUnknownFields: boolean }): unknown;
}

function isSplitProtobufError(err: unknown): boolean {
  return err instanceof TypeError && err.message === 'type must be a Type';
}

type ProtoOwned = { protojson: ProtoJson; historyType: unknown };
let fallback: ProtoOwned | undefined;
function protoOwnedJson(): ProtoOwned {
  if (!fallback) {
    const fromProto = createRequire(require.resolve('@temporalio/proto'));
    const protojson = fromProto('protobufjs/ext/protojson') as ProtoJson;
    const root = patchProtobufRoot(proto as unknown as Record<string, unknown>) as unknown as {
      lookupType(name: string): unknown;
    };
    fallback = { protojson, historyType: root.lookupType('temporal.api.history.v1.History') };
  }
  return fallback;
}

/** `convert` with the SDK's helpers, or through the proto package's own protobufjs when they are split. */
function withSplitFallback<T>(convert: () => T, viaProtoOwned: (owned: ProtoOwned) => T): T {
  try {
    return convert();
  } catch (err) {
    if (!isSplitProtobufError(err)) throw err;
    return viaProtoOwned(protoOwnedJson());
  }
}

function toJson(history: History): string {
  return withSplitFallback(
    () => historyToJSON(history),
    ({ protojson, historyType }) => {
      const message = proto.temporal.api.history.v1.History.fromObject(history);
      return JSON.stringify(protojson.toJson(historyType, message), null, 2);
    },
  );
}

function fromJson(json: unknown): History {
  return withSplitFallback(
    () => historyFromJSON(json),
    ({ protojson, historyType }) =>
      protojson.fromJson(historyType, json, { ignoreUnknownFields: true }) as History,
  );
}

interface JsonEvent {
  eventId: string;
  eventType: string;
  eventTime?: string;
  markerRecordedEventAttributes?: { markerName?: string };
  [attributes: string]: unknown;
}

/** Every `...EventId` field under `value` renumbered by `ids` (old id → new id). */
function renumberReferences(value: unknown, ids: Map<string, string>): void {
  if (Array.isArray(value)) {
    for (const v of value) renumberReferences(v, ids);
    return;
  }
  if (value === null || typeof value !== 'object') return;
  const obj = value as Record<string, unknown>;
  for (const [k, v] of Object.entries(obj)) {
    if (k !== 'eventId' && k.endsWith('EventId') && typeof v === 'string' && ids.has(v)) obj[k] = ids.get(v);
    else renumberReferences(v, ids);
  }
}

/**
 * The run's history as it reads when its first task was completed right after its first local
 * activity's marker, and the workflow's reaction to that result went to a task of its own: the shape
 * Core writes when it answers a query while a local activity's result is waiting for the workflow
 * (sdk-core `prepare_complete_resp`: query responses with a pending local-activity resolution send
 * the commands so far, that marker among them, and force a new task). Under load it happens at
 * random; this writes it on purpose, so a test can replay it. Undefined when the first task holds no
 * local-activity marker followed by more commands.
 */
export function withTaskEndAfterFirstLocalActivity(history: History): History | undefined {
  const events = jsonEvents(history);
  const firstTaskEnd = events.findIndex((e) => e.eventType === 'EVENT_TYPE_WORKFLOW_TASK_COMPLETED');
  const at = events.findIndex((e, i) => i > firstTaskEnd && isLocalActivityMarker(e));
  const next = events[at + 1];
  if (firstTaskEnd < 0 || at < 0 || next === undefined || next.eventType.includes('WORKFLOW_TASK')) return;
  return withTaskEndAt(events, at);
}

/**
 * The run's history with a task ended after one local-activity marker, once for each marker that a
 * command of the same task follows (the run's completion aside): the same shape as
 * `withTaskEndAfterFirstLocalActivity`, wherever in the run the query lands, e.g. before the last
 * step's reaction and the run's end (Progress's outcome upsert). Each entry names the marker's
 * event id in the original history.
 */
export function withTaskEndAfterEachLocalActivity(
  history: History,
): { markerEventId: string; history: History }[] {
  const events = jsonEvents(history);
  const firstTaskEnd = events.findIndex((e) => e.eventType === 'EVENT_TYPE_WORKFLOW_TASK_COMPLETED');
  return events.flatMap((e, at) => {
    const next = events[at + 1]?.eventType;
    if (firstTaskEnd < 0 || at < firstTaskEnd || !isLocalActivityMarker(e) || next === undefined) return [];
    if (next.includes('WORKFLOW_TASK') || next === 'EVENT_TYPE_WORKFLOW_EXECUTION_COMPLETED') return [];
    return [{ markerEventId: e.eventId, history: withTaskEndAt(events, at) }];
  });
}

function jsonEvents(history: History): JsonEvent[] {
  return (JSON.parse(toJson(history)) as { events: JsonEvent[] }).events;
}

function isLocalActivityMarker(e: JsonEvent): boolean {
  return (
    e.eventType === 'EVENT_TYPE_MARKER_RECORDED' &&
    e.markerRecordedEventAttributes?.markerName === 'core_local_activity'
  );
}

/** `events` with a task of its own inserted right after `events[at]` (copies of the first task's events). */
function withTaskEndAt(original: readonly JsonEvent[], at: number): History {
  // A copy: the renumbering below edits the events' attributes in place, and callers split one list many times.
  const events = JSON.parse(JSON.stringify(original)) as JsonEvent[];
  const firstTaskEnd = events.findIndex((e) => e.eventType === 'EVENT_TYPE_WORKFLOW_TASK_COMPLETED');
  const copy = (i: number) => JSON.parse(JSON.stringify(events[i])) as JsonEvent;
  const first = (type: string) => events.findIndex((e) => e.eventType === `EVENT_TYPE_WORKFLOW_TASK_${type}`);
  const taskEvents = [copy(first('SCHEDULED')), copy(first('STARTED')), copy(firstTaskEnd)];
  const ids = new Map<string, string>();
  const out: JsonEvent[] = [];
  for (const [i, e] of events.entries()) {
    const id = String(out.length + 1);
    ids.set(e.eventId, id);
    out.push({ ...e, eventId: id });
    if (i !== at) continue;
    for (const t of taskEvents) out.push({ ...t, eventId: String(out.length + 1), eventTime: e.eventTime });
  }
  renumberReferences(out, ids);
  // The inserted task's own references, which the renumbering took for those of the first task.
  const scheduled = String(at + 2);
  const started = String(at + 3);
  const attrs = (e: JsonEvent | undefined, key: string) => (e?.[key] ?? {}) as Record<string, string>;
  attrs(out[at + 2], 'workflowTaskStartedEventAttributes').scheduledEventId = scheduled;
  Object.assign(attrs(out[at + 3], 'workflowTaskCompletedEventAttributes'), {
    scheduledEventId: scheduled,
    startedEventId: started,
  });
  return fromJson({ events: out });
}

/**
 * shareLedger: the one owner of an image's launch and create-volume permissions for amiflow (an
 * entity workflow per region, owner account and image id). Shares send requests (`acquire`,
 * `release`) as signals and wait for each outcome with an update; the ledger carries them out one at
 * a time, so two shares of the same image never race each other's reads and writes.
 *
 * A permission is reference-counted by the share runs that hold it: releasing one removes it from
 * the image only when no other live share holds it, and never when it was on the image before
 * amiflow first added it (seen by the ledger's own describe, serialized with its writes). KMS grants
 * need no counting here: each share run makes grants named for itself (`amiflow/<run>/<account>`)
 * and revokes only those, so one share's withdrawal never touches another's grant.
 */
import {
  ApplicationFailure,
  allHandlersFinished,
  condition,
  continueAsNew,
  setHandler,
  workflowInfo,
} from '@temporalio/workflow';
import type {
  AwsTarget,
  LaunchPermissionEntry,
  LedgerAcquire,
  LedgerEntry,
  LedgerKept,
  LedgerOutcome,
  LedgerRequest,
  ShareLedgerInput,
  SnapshotPermissionEntry,
} from '../contracts';
import { ledgerEntriesQuery, ledgerOutcomeUpdate, ledgerRequestSignal } from '../contracts';
import { act, la } from './bootstrap';
import { compensationCall, fastAwsCall } from './presets';
import { patchesAtStart } from './patches';

/** A ledger with nobody holding anything ends after this long without a request. */
const IDLE_MS = 24 * 3600 * 1000;
/** Outcomes kept for requests asked again (an activity retried after the answer was given). */
const ANSWERS_KEPT = 200;
/** Continue-as-new before the history grows long (Temporal suggests it too). */
const HISTORY_EVENTS = 5000;

export function launchKey(p: LaunchPermissionEntry): string {
  if (p.userId) return `launch:user:${p.userId}`;
  if (p.organizationArn) return `launch:org:${p.organizationArn}`;
  if (p.organizationalUnitArn) return `launch:ou:${p.organizationalUnitArn}`;
  return 'launch:group:all';
}

function snapshotPairs(perms: SnapshotPermissionEntry[]): { snapshotId: string; userId: string }[] {
  return perms.flatMap((p) => p.userIds.map((userId) => ({ snapshotId: p.snapshotId, userId })));
}

function snapshotKey(p: { snapshotId: string; userId: string }): string {
  return `snapshot:${p.snapshotId}:${p.userId}`;
}

function groupSnapshots(pairs: { snapshotId: string; userId: string }[]): SnapshotPermissionEntry[] {
  const by = new Map<string, string[]>();
  for (const p of pairs) by.set(p.snapshotId, [...(by.get(p.snapshotId) ?? []), p.userId]);
  return [...by].map(([snapshotId, userIds]) => ({ snapshotId, userIds }));
}

/** The entry behind a key (`launch:user:1111…` → `{ userId }`), for the removal calls. */
function launchOf(key: string): LaunchPermissionEntry {
  const [, kind, ...rest] = key.split(':');
  const value = rest.join(':');
  if (kind === 'user') return { userId: value };
  if (kind === 'org') return { organizationArn: value };
  if (kind === 'ou') return { organizationalUnitArn: value };
  return { group: 'all' };
}

function snapshotOf(key: string): { snapshotId: string; userId: string } {
  const [, snapshotId = '', userId = ''] = key.split(':');
  return { snapshotId, userId };
}

function failureOf(err: unknown): { type?: string; message: string } {
  for (let c: unknown = err; c instanceof Error; c = (c as Error & { cause?: unknown }).cause)
    if (c instanceof ApplicationFailure) return { ...(c.type ? { type: c.type } : {}), message: c.message };
  return { message: err instanceof Error ? err.message : String(err) };
}

class Ledger {
  readonly entries: Map<string, LedgerEntry>;
  constructor(
    readonly input: ShareLedgerInput,
    readonly target: AwsTarget,
  ) {
    this.entries = new Map((input.entries ?? []).map((e) => [e.key, e]));
  }

  get holdersLeft(): boolean {
    return [...this.entries.values()].some((e) => e.holders.length > 0);
  }

  async carryOut(req: LedgerRequest): Promise<LedgerOutcome> {
    return req.op === 'acquire' ? this.acquire(req) : this.release(req.requestId, req.holder);
  }

  private async acquire(req: LedgerAcquire): Promise<LedgerOutcome> {
    const imageId = this.input.image.imageId;
    // What is on the image now, read in turn with this ledger's own writes: a permission amiflow
    // has not seen before and finds present was there before amiflow, and stays.
    const now = await la.describeImageForSharing.executeWithOptions(
      { ...fastAwsCall, summary: `read the permissions on ${imageId}` },
      [{ target: this.target, imageId }],
    );
    const present = new Set([
      ...now.launchPermissions.map(launchKey),
      ...snapshotPairs(now.snapshotPermissions).map(snapshotKey),
    ]);
    const hold = (key: string): boolean => {
      const e = this.entries.get(key) ?? { key, preexisting: present.has(key), holders: [] };
      if (!e.preexisting && !e.holders.includes(req.holder)) e.holders.push(req.holder);
      this.entries.set(key, e);
      return !e.preexisting;
    };
    const launch = req.launchPermissions.filter((p) => hold(launchKey(p)));
    const launchBefore = req.launchPermissions.filter((p) => !launch.includes(p));
    const pairs = snapshotPairs(req.snapshotPermissions);
    const snaps = pairs.filter((p) => hold(snapshotKey(p)));
    const snapsBefore = pairs.filter((p) => !snaps.includes(p));
    try {
      // Added even when held already (idempotent): what a share holds is on the image, whatever
      // an earlier read said. Create-volume first: targets see the image once they can use it.
      if (snaps.length > 0)
        await act.addSnapshotPermissions.executeWithOptions(
          { ...compensationCall, summary: `let ${snaps.length} account/snapshot pair(s) create volumes` },
          [{ target: this.target, permissions: groupSnapshots(snaps) }],
        );
      if (launch.length > 0)
        await act.addLaunchPermissions.executeWithOptions(
          { ...compensationCall, summary: `share ${imageId} for ${req.holder}` },
          [{ target: this.target, imageId, permissions: launch }],
        );
    } catch (err) {
      // Nothing of a failed request is held: let go of it (removing only what nobody else holds).
      await this.release(`${req.requestId}/undo`, req.holder);
      return { ...emptyOutcome(req.requestId), error: failureOf(err) };
    }
    return {
      ...emptyOutcome(req.requestId),
      launchPermissions: launch,
      snapshotPermissions: groupSnapshots(snaps),
      preexisting: { launchPermissions: launchBefore, snapshotPermissions: groupSnapshots(snapsBefore) },
    };
  }

  private async release(requestId: string, holder: string): Promise<LedgerOutcome> {
    const remove: string[] = [];
    const kept: LedgerKept[] = [];
    for (const e of this.entries.values()) {
      if (!e.holders.includes(holder)) continue;
      e.holders = e.holders.filter((h) => h !== holder);
      if (e.holders.length === 0) remove.push(e.key);
      else kept.push({ permission: e.key, because: `still held by live share(s) ${e.holders.join(', ')}` });
    }
    const launch = remove.filter((k) => k.startsWith('launch:')).map(launchOf);
    const snaps = remove.filter((k) => k.startsWith('snapshot:')).map(snapshotOf);
    const imageId = this.input.image.imageId;
    try {
      // Launch permissions first: targets stop seeing the image before they lose its snapshots.
      if (launch.length > 0)
        await act.removeLaunchPermissions.executeWithOptions(
          { ...compensationCall, summary: `withdraw ${imageId} from what only ${holder} held` },
          [{ target: this.target, imageId, permissions: launch }],
        );
      if (snaps.length > 0)
        await act.removeSnapshotPermissions.executeWithOptions(
          { ...compensationCall, summary: `withdraw create-volume permissions only ${holder} held` },
          [{ target: this.target, permissions: groupSnapshots(snaps) }],
        );
    } catch (err) {
      return { ...emptyOutcome(requestId), kept, error: failureOf(err) };
    }
    return {
      ...emptyOutcome(requestId),
      launchPermissions: launch,
      snapshotPermissions: groupSnapshots(snaps),
      kept,
    };
  }
}

function emptyOutcome(requestId: string): LedgerOutcome {
  return {
    requestId,
    launchPermissions: [],
    snapshotPermissions: [],
    preexisting: { launchPermissions: [], snapshotPermissions: [] },
    kept: [],
  };
}

export async function shareLedger(input: ShareLedgerInput): Promise<void> {
  const target: AwsTarget = {
    region: input.image.region,
    ...(input.image.accountId ? { accountId: input.image.accountId } : {}),
  };
  // Decided now, in the first activation (patches.ts): the ledger keeps no Progress.
  const since = patchesAtStart();
  const ledger = new Ledger(input, target);
  const pending: LedgerRequest[] = [...(input.pending ?? [])];
  const answered = new Map((input.answered ?? []).map((o) => [o.requestId, o]));
  /** The request being carried out: out of `pending`, not yet in `answered`. */
  let carrying: string | undefined;
  const known = (id: string) =>
    answered.has(id) ||
    pending.some((p) => p.requestId === id) ||
    // Asked again while being carried out (its activity retried on another worker after the first
    // went away): it used to be queued and carried out a second time.
    (id === carrying && since('share-ledger-dedupe-in-flight'));

  setHandler(ledgerEntriesQuery, () => [...ledger.entries.values()]);
  setHandler(ledgerRequestSignal, (req) => {
    if (!known(req.requestId)) pending.push(req); // asked again (a retried activity): answered once
  });
  setHandler(
    ledgerOutcomeUpdate,
    // No validator: the update can reach the ledger before the signal that carries its request
    // (both are sent by requestShareLedger, in that order); it waits for the answer either way.
    async (requestId) => {
      await condition(() => answered.has(requestId));
      const out = answered.get(requestId);
      if (!out) throw ApplicationFailure.nonRetryable(`no outcome for ${requestId}`);
      return out;
    },
  );

  for (;;) {
    const asked = await condition(() => pending.length > 0, IDLE_MS);
    if (!asked) {
      if (ledger.holdersLeft) continue;
      // Nobody holds anything: what amiflow added is gone, and a new ledger starts from AWS's view.
      await condition(allHandlersFinished);
      if (pending.length === 0) return;
      continue;
    }
    const req = pending.shift();
    if (!req) continue;
    carrying = req.requestId;
    answered.set(req.requestId, await ledger.carryOut(req));
    carrying = undefined;
    for (const id of [...answered.keys()].slice(0, Math.max(0, answered.size - ANSWERS_KEPT)))
      answered.delete(id);
    const info = workflowInfo();
    const limit = input.continueAfterEvents ?? HISTORY_EVENTS;
    if (pending.length === 0 && (info.continueAsNewSuggested || info.historyLength > limit)) {
      // Every waiting update has its answer now; the next run carries the ledger and the answers.
      await condition(allHandlersFinished);
      if (pending.length > 0) continue;
      await continueAsNew<typeof shareLedger>({
        image: input.image,
        ...(input.continueAfterEvents ? { continueAfterEvents: input.continueAfterEvents } : {}),
        entries: [...ledger.entries.values()],
        pending,
        answered: [...answered.values()],
      });
    }
  }
}

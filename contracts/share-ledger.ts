/**
 * The share ledger: one entity workflow per shared image (region, owner account, image id) that
 * owns the image's launch and create-volume permissions for amiflow. Shares acquire what they need
 * and release it when withdrawn; a permission is removed only when no live share of amiflow holds
 * it any more, and never when it was there before amiflow added it.
 */
import { defineQuery, defineSignal, defineUpdate } from '@temporalio/workflow';
import type { ImageRef, LaunchPermissionEntry, SnapshotPermissionEntry } from './share';

export const SHARE_LEDGER_WORKFLOW_TYPE = 'shareLedger';

/** `share-ledger/<region>/<account or self>/<image id>`: one ledger per image, found again by id. */
export function shareLedgerWorkflowId(image: ImageRef & { imageId: string }): string {
  return `share-ledger/${image.region}/${image.accountId ?? 'self'}/${image.imageId}`;
}

/** A share run that holds permissions: `<workflow id>/<run id>`. */
export function ledgerHolder(workflowId: string, runId: string): string {
  return `${workflowId}/${runId}`;
}

export interface LedgerAcquire {
  op: 'acquire';
  /** Unique per request (the share run and the operation): a repeated request is answered, not redone. */
  requestId: string;
  holder: string;
  launchPermissions: LaunchPermissionEntry[];
  snapshotPermissions: SnapshotPermissionEntry[];
}

export interface LedgerRelease {
  op: 'release';
  requestId: string;
  holder: string;
}

export type LedgerRequest = LedgerAcquire | LedgerRelease;

/** A permission the ledger kept when a share let go of it, and why. */
export interface LedgerKept {
  permission: string;
  because: string;
}

export interface LedgerOutcome {
  requestId: string;
  /** acquire: what the share holds (added now or held by amiflow already); release: what was removed. */
  launchPermissions: LaunchPermissionEntry[];
  snapshotPermissions: SnapshotPermissionEntry[];
  /** acquire: what was there before amiflow (never removed by it). */
  preexisting: { launchPermissions: LaunchPermissionEntry[]; snapshotPermissions: SnapshotPermissionEntry[] };
  /** release: what stays, because another live share holds it or it predates amiflow. */
  kept: LedgerKept[];
  /** The request failed (an AWS refusal): nothing of it is held. */
  error?: { type?: string; message: string };
}

/** The ledger's state: who holds what (queried by operators and tests). */
export interface LedgerEntry {
  /** `launch:user:<account>`, `launch:org:<arn>`, `launch:ou:<arn>`, `launch:group:all`, `snapshot:<snap>:<account>`. */
  key: string;
  /** It was on the image before amiflow's first share of it: amiflow never removes it. */
  preexisting: boolean;
  holders: string[];
}

export interface ShareLedgerInput {
  image: ImageRef & { imageId: string };
  /** Continue-as-new after this many history events (default 5,000; tests make it small). */
  continueAfterEvents?: number;
  /** Carried over continue-as-new. */
  entries?: LedgerEntry[];
  pending?: LedgerRequest[];
  answered?: LedgerOutcome[];
}

export const ledgerRequestSignal = defineSignal<[LedgerRequest]>('ledgerRequest');
/** Waits until the request has been carried out, and returns its outcome. */
export const ledgerOutcomeUpdate = defineUpdate<LedgerOutcome, [string]>('ledgerOutcome');
export const ledgerEntriesQuery = defineQuery<LedgerEntry[]>('ledgerEntries');

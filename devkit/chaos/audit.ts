/**
 * After a chaos session: what EC2 really holds (read from moto directly, not through the fault
 * layer) against what the runs reported. A resource no completed run reports is an orphan; more
 * than one image, copy or instance for one run is a duplicate; an instance not in the state its
 * run should have left it in, or a run that ended otherwise than expected, is a wrong outcome.
 */
import type { EC2Client, Tag } from '@aws-sdk/client-ec2';
import { DescribeImageAttributeCommand, DescribeInstancesCommand } from '@aws-sdk/client-ec2';
import { TAG } from '../../workflows/contracts';
import { imagesTagged, instanceState, ownImages, ownSnapshots } from '../sandbox-ec2';
import type { RunRecord } from './drive';
import type { Outcome } from './plan';

export interface SandboxContents {
  images: Set<string>;
  snapshots: Set<string>;
  instances: Set<string>;
  /** What an orphan is, for the report: region, name, and the run that tagged it (amiflow:workflow-id). */
  labels: Map<string, string>;
}

export interface Audit {
  wrongOutcomes: string[];
  wrongStates: string[];
  duplicates: string[];
  orphans: string[];
}

export async function contents(clients: Map<string, EC2Client>): Promise<SandboxContents> {
  const out: SandboxContents = {
    images: new Set(),
    snapshots: new Set(),
    instances: new Set(),
    labels: new Map(),
  };
  for (const [region, ec2] of clients) {
    for (const i of await ownImages(ec2)) {
      out.images.add(i.ImageId ?? '');
      out.labels.set(i.ImageId ?? '', label(region, `name ${i.Name ?? '?'}`, i.Tags));
    }
    for (const s of await ownSnapshots(ec2)) {
      out.snapshots.add(s.SnapshotId ?? '');
      out.labels.set(s.SnapshotId ?? '', label(region, s.Description ?? '', s.Tags));
    }
    for (const i of await liveInstances(ec2)) out.instances.add(i);
  }
  return out;
}

/** `in us-east-1, name x, run <workflow id>`: an untagged orphan says so, which matters as much. */
function label(region: string, what: string, tags: Tag[] | undefined): string {
  const run = tags?.find((t) => t.Key === TAG.workflowId)?.Value;
  return [`in ${region}`, what, run ? `run ${run}` : `no ${TAG.workflowId} tag`].filter(Boolean).join(', ');
}

async function liveInstances(ec2: EC2Client): Promise<string[]> {
  const out = await ec2.send(new DescribeInstancesCommand({}));
  return (out.Reservations ?? []).flatMap((r) =>
    (r.Instances ?? []).flatMap((i) =>
      i.InstanceId && i.State?.Name !== 'terminated' && i.State?.Name !== 'shutting-down'
        ? [i.InstanceId]
        : [],
    ),
  );
}

function expectedOutcome(rec: RunRecord): Outcome {
  if (rec.run.expect !== 'cancelled') return rec.run.expect;
  // Cancelled after it had closed, or within the same second as its last step: completing is right.
  const late =
    rec.cancelTooLate || (rec.cancelIssuedAt !== undefined && rec.endedAt - rec.cancelIssuedAt < 1000);
  return late && rec.outcome === 'completed' ? 'completed' : 'cancelled';
}

/** Every id a completed run reports (results are searched as JSON, so no id is missed). */
function reportedIds(records: RunRecord[]): Set<string> {
  const ids = new Set<string>();
  for (const r of records)
    if (r.outcome === 'completed')
      for (const m of JSON.stringify(r.result ?? {}).matchAll(/\b(ami|snap|i)-[0-9a-f]+\b/g)) ids.add(m[0]);
  return ids;
}

export async function audit(
  clients: Map<string, EC2Client>,
  home: EC2Client,
  before: SandboxContents,
  records: RunRecord[],
): Promise<Audit> {
  const a: Audit = { wrongOutcomes: [], wrongStates: [], duplicates: [], orphans: [] };
  for (const rec of records) {
    const want = expectedOutcome(rec);
    if (rec.outcome !== want)
      a.wrongOutcomes.push(
        `${rec.run.name}: ${rec.outcome} (expected ${want})${rec.message ? `: ${rec.message}` : ''}`,
      );
    const { instanceId, startState } = rec.run;
    if (instanceId && startState) {
      const wantState = rec.run.kind === 'migrate' && rec.outcome === 'completed' ? 'stopped' : startState;
      const state = await instanceState(home, instanceId);
      if (state !== wantState)
        a.wrongStates.push(`${rec.run.name}: ${instanceId} is ${state}, expected ${wantState}`);
    }
    await duplicatesOf(clients, rec, a);
  }
  const reported = reportedIds(records);
  const now = await contents(clients);
  for (const kind of ['images', 'snapshots', 'instances'] as const)
    for (const id of now[kind])
      if (!before[kind].has(id) && !reported.has(id)) {
        const what = now.labels.get(id);
        a.orphans.push(`${kind.slice(0, -1)} ${id}${what ? ` (${what})` : ''}`);
      }
  await permissionsLeft(home, records, a);
  return a;
}

async function duplicatesOf(clients: Map<string, EC2Client>, rec: RunRecord, a: Audit): Promise<void> {
  if (rec.run.kind === 'share') return;
  for (const [region, ec2] of clients) {
    const images = await imagesTagged(ec2, TAG.workflowId, rec.workflowId);
    if (images.length > 1) a.duplicates.push(`${rec.run.name}: ${images.length} images in ${region}`);
  }
  if (rec.run.kind !== 'migrate') return;
  const home = clients.values().next().value as EC2Client;
  const out = await home.send(
    new DescribeInstancesCommand({ Filters: [{ Name: `tag:${TAG.workflowId}`, Values: [rec.workflowId] }] }),
  );
  const launched = (out.Reservations ?? []).flatMap((r) => r.Instances ?? []).length;
  if (launched > 1) a.duplicates.push(`${rec.run.name}: ${launched} instances launched`);
}

/** Launch permissions on share sources: only a completed share may leave its grant. */
async function permissionsLeft(home: EC2Client, records: RunRecord[], a: Audit): Promise<void> {
  for (const rec of records) {
    if (rec.run.kind !== 'share' || rec.outcome === 'completed' || !rec.run.imageId) continue;
    const out = await home.send(
      new DescribeImageAttributeCommand({ ImageId: rec.run.imageId, Attribute: 'launchPermission' }),
    );
    for (const p of out.LaunchPermissions ?? [])
      a.orphans.push(
        `launch permission ${rec.run.imageId} → ${p.UserId ?? p.Group ?? p.OrganizationArn ?? '?'}`,
      );
  }
}

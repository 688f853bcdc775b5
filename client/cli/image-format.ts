/** Image results for people: create, share, unshare and copy (also used by `amiflow watch`). */
import type {
  CopyImageResult,
  ImageFromInstanceResult,
  ShareImageResult,
  UnshareImageResult,
} from '../../contracts';

export function formatImageResult(r: ImageFromInstanceResult): string {
  const lines = [
    `image ${r.imageId} '${r.imageName}' is available in ${r.region}`,
    `  snapshots: ${r.snapshotIds.join(', ') || '(none)'}`,
    `  ${r.consistencyNote}`,
    `  instance ${r.instanceId} is ${r.instanceFinalState}${r.downtimeSeconds > 0 ? ` (downtime ${r.downtimeSeconds.toFixed(1)} s)` : ''}`,
  ];
  const a = r.appConsistency;
  if (a) {
    const freeze =
      a.freezeSeconds !== undefined
        ? `frozen ${a.freezeSeconds.toFixed(3)} s (measured by the ${a.freezeMeasuredBy ?? 'worker'})`
        : 'freeze not measured';
    lines.push(
      `  ${a.quiesce}${a.frozen?.length ? ` of ${a.frozen.join(', ')}` : ''}: ${freeze}; watchdog ${a.maxFreezeSeconds} s`,
      `  pre step ${a.pre.status}${a.pre.error ? ` (${a.pre.error})` : ''}; post step ${a.post.status}` +
        `${a.post.thawedBy ? `, thawed by the ${a.post.thawedBy}` : ''}${a.post.error ? ` (${a.post.error})` : ''}`,
    );
  }
  return lines.join('\n');
}

export function formatShareResult(r: ShareImageResult): string {
  const lp = r.added.launchPermissions.map(
    (p) => p.userId ?? p.organizationArn ?? p.organizationalUnitArn ?? 'everyone',
  );
  const lines = [
    `image ${r.sharedImageId} (${r.image.region}) shared at ${r.sharedAt}` +
      (r.reencryptedCopy ? ` (a copy of ${r.image.imageId} under ${r.reencryptedCopy.kmsKeyId})` : ''),
    `  launch permission added for: ${lp.join(', ') || '(none: every target had it)'}`,
  ];
  const already = r.alreadyPresent.launchPermissions.map(
    (p) => p.userId ?? p.organizationArn ?? p.organizationalUnitArn ?? 'everyone',
  );
  if (already.length) lines.push(`  already had it (left alone): ${already.join(', ')}`);
  if (r.added.snapshotPermissions.length)
    lines.push(
      `  may copy it (snapshot create-volume permission): ${[...new Set(r.added.snapshotPermissions.flatMap((p) => p.userIds))].join(', ')}`,
    );
  for (const g of r.added.grants)
    lines.push(`  KMS grant ${g.grantId} on ${g.keyArn} for ${g.granteeAccountId}`);
  for (const k of r.keyAccess)
    lines.push(
      `  principals in the target accounts need this IAM policy on ${k.keyArn}:`,
      JSON.stringify(k.targetIamPolicy, null, 2).replace(/^/gm, '    '),
    );
  if (r.withdrawnAt) lines.push(`  withdrawn at ${r.withdrawnAt} (due ${r.expiresAt ?? '?'})`);
  else lines.push(`  withdraw it with: amiflow image unshare <this workflow id>`);
  return lines.join('\n');
}

export function formatCopyResult(r: CopyImageResult): string {
  const lines = [`copies of ${r.source.imageId} '${r.source.imageName}' (${r.source.region}): ${r.outcome}`];
  for (const d of r.destinations)
    lines.push(
      `  ${d.region}${d.accountId ? `/${d.accountId}` : ''}: ${d.status}${d.imageId ? ` ${d.imageId}` : ''}` +
        `${d.exists ? '' : d.imageId ? ' (gone)' : ''}${d.error ? `: ${d.error}` : ''}`,
    );
  if (r.share)
    lines.push(
      `  shared with ${r.share.accountIds.join(', ')} to copy, ${r.share.withdrawn ? 'withdrawn since' : 'NOT withdrawn'}`,
    );
  return lines.join('\n');
}

export function formatUnshareResult(r: UnshareImageResult): string {
  const w = r.withdrawn;
  return (
    `withdrawn from ${r.sharedImageId} (${r.image.region}): ${w.launchPermissions.length} launch permission(s), ` +
    `create-volume permissions on ${w.snapshotPermissions.length} snapshot(s), ${w.grants.length} KMS grant(s)` +
    (r.deletedReencryptedCopy ? `; re-encrypted copy ${r.deletedReencryptedCopy} deleted` : '') +
    (r.keptReencryptedCopy
      ? `; re-encrypted copy ${r.keptReencryptedCopy.imageId} kept: ${r.keptReencryptedCopy.because.join('; ')}`
      : '') +
    // What the share ledger kept: another live share still needs it, or it predates amiflow.
    (r.kept?.length ? `\nkept:\n${r.kept.map((k) => `  ${k.permission}: ${k.because}`).join('\n')}` : '')
  );
}

/** A share, unshare or copy result for people, or undefined when `value` is none of them (`amiflow watch`). */
export function formatDistributionResult(value: unknown): string | undefined {
  if (typeof value !== 'object' || value === null) return undefined;
  if ('destinations' in value && 'outcome' in value) return formatCopyResult(value as CopyImageResult);
  if ('withdrawn' in value && 'sharedImageId' in value)
    return formatUnshareResult(value as UnshareImageResult);
  if ('added' in value && 'sharedAt' in value) return formatShareResult(value as ShareImageResult);
  return undefined;
}

/** Renders a workflow's progress as a step list for terminals (live) and logs (line per change). */
import type { StepState, WorkflowProgress } from '../contracts';
import { forTerminal } from './trust-input';

const MARK: Record<StepState, string> = {
  pending: '○',
  running: '●',
  done: '✔',
  failed: '✖',
  skipped: '–',
  compensated: '↺',
};

function seconds(from?: string, to?: string): string {
  if (!from) return '';
  const ms = (to ? Date.parse(to) : Date.now()) - Date.parse(from);
  return Number.isFinite(ms) ? `${(ms / 1000).toFixed(1)}s` : '';
}

export function renderProgress(p: WorkflowProgress): string {
  const width = Math.max(...p.steps.map((s) => s.name.length), 10);
  const lines = [`${p.workflowType}: ${p.phase}`];
  for (const s of p.steps) {
    const time = s.state === 'pending' || s.state === 'skipped' ? '' : seconds(s.startedAt, s.finishedAt);
    const detail = s.detail ? `  ${s.detail}` : '';
    lines.push(`  ${MARK[s.state]} ${s.name.padEnd(width)} ${time.padStart(7)}${detail}`);
  }
  const res = Object.entries(p.resources);
  if (res.length) lines.push(`  resources: ${res.map(([k, v]) => `${k}=${v}`).join(' ')}`);
  for (const c of p.compensations)
    lines.push(`  undo ${c.state === 'done' ? '✔' : '✖'} ${c.name}${c.error ? `: ${c.error}` : ''}`);
  if (p.error) lines.push(`  error: ${p.error}`);
  return lines.join('\n');
}

/** Redraws in place on a TTY; elsewhere prints each new state once. */
export function progressPrinter(out: NodeJS.WriteStream = process.stdout): (p: WorkflowProgress) => void {
  let drawn = 0;
  return (p) => {
    // Step details, resources and errors quote AWS and callers: no escape sequence of theirs runs here.
    const text = forTerminal(renderProgress(p));
    if (out.isTTY && drawn > 0) out.write(`\x1b[${drawn}A\x1b[0J`);
    out.write(`${text}\n`);
    drawn = out.isTTY ? text.split('\n').length : 0;
  };
}

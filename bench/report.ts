/** Printing for the benchmark: section headings, aligned key/value lines and the summary table. */

export interface Row {
  figure: string;
  measured: string;
  target: string;
  /** undefined: a figure printed for information, with no target. */
  pass?: boolean;
}

export function heading(title: string): void {
  console.log(`\n== ${title}`);
}

export function line(label: string, value: string): void {
  console.log(`   ${label.padEnd(44)} ${value}`);
}

export function note(text: string): void {
  console.log(`   ${text}`);
}

export function table(rows: Row[]): void {
  const header: Row = { figure: 'figure', measured: 'measured', target: 'target' };
  const width = (key: 'figure' | 'measured' | 'target') =>
    Math.max(...[header, ...rows].map((r) => r[key].length));
  const [f, m, t] = [width('figure'), width('measured'), width('target')];
  const fmt = (r: Row, result: string) =>
    `${r.figure.padEnd(f)}  ${r.measured.padEnd(m)}  ${r.target.padEnd(t)}  ${result}`;
  console.log(fmt(header, 'result'));
  console.log('-'.repeat(f + m + t + 12));
  for (const r of rows) console.log(fmt(r, r.pass === undefined ? 'info' : r.pass ? 'PASS' : 'FAIL'));
}

export const seconds = (ms: number, digits = 1): string => `${(ms / 1000).toFixed(digits)} s`;
export const mib = (n: number): string => `${n.toFixed(0)} MB`;
export const range = (values: number[]): string => {
  const lo = Math.min(...values);
  const hi = Math.max(...values);
  return lo === hi ? String(lo) : `${lo}–${hi}`;
};

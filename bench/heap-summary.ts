/**
 * Summarises a V8 .heapsnapshot by constructor: object count, self size and retained size (the
 * memory that would be freed with the objects, from the dominator tree), largest first.
 *
 *   node --import tsx bench/heap-summary.ts FILE.heapsnapshot [--top 25] [--json OUT]
 *
 * Retained size per constructor counts only objects not dominated directly by another object of the
 * same constructor, so a linked list is not counted once per node. Weak edges do not retain.
 */
import { readFile, writeFile } from 'node:fs/promises';

interface Snapshot {
  snapshot: {
    meta: {
      node_fields: string[];
      node_types: [string[], ...unknown[]];
      edge_fields: string[];
      edge_types: [string[], ...unknown[]];
    };
  };
  nodes: number[];
  edges: number[];
  strings: string[];
}

export interface ConstructorRow {
  name: string;
  count: number;
  selfBytes: number;
  retainedBytes: number;
}

export interface HeapSummary {
  nodes: number;
  totalSelfBytes: number;
  rows: ConstructorRow[];
}

/** Immediate dominators over the graph from root 0 (Cooper, Harvey and Kennedy's iteration). */
function dominators(n: number, succ: (v: number, visit: (w: number) => void) => void): Int32Array {
  // Post-order numbering by an explicit-stack DFS (the graph is far too deep for recursion).
  const order = new Int32Array(n).fill(-1);
  const byOrder: number[] = [];
  const stack: number[] = [0];
  const children: number[][] = [];
  const seen = new Uint8Array(n);
  seen[0] = 1;
  const pending: number[][] = [];
  pending.push([]);
  succ(0, (w) => pending[0]?.push(w));
  children.push(pending[0] ?? []);
  while (stack.length > 0) {
    const top = stack.length - 1;
    const next = children[top]?.pop();
    if (next === undefined) {
      const v = stack.pop() as number;
      children.pop();
      order[v] = byOrder.length;
      byOrder.push(v);
      continue;
    }
    if (seen[next]) continue;
    seen[next] = 1;
    const list: number[] = [];
    succ(next, (w) => {
      if (!seen[w]) list.push(w);
    });
    stack.push(next);
    children.push(list);
  }
  const preds: number[][] = Array.from({ length: n }, () => []);
  for (const v of byOrder) succ(v, (w) => preds[w]?.push(v));
  const idom = new Int32Array(n).fill(-1);
  idom[0] = 0;
  const intersect = (a: number, b: number) => {
    while (a !== b) {
      while ((order[a] ?? 0) < (order[b] ?? 0)) a = idom[a] ?? 0;
      while ((order[b] ?? 0) < (order[a] ?? 0)) b = idom[b] ?? 0;
    }
    return a;
  };
  for (let changed = true; changed;) {
    changed = false;
    for (let i = byOrder.length - 1; i >= 0; i--) {
      const v = byOrder[i] ?? 0;
      if (v === 0) continue;
      let d = -1;
      for (const p of preds[v] ?? []) if ((idom[p] ?? -1) >= 0) d = d < 0 ? p : intersect(p, d);
      if (d >= 0 && idom[v] !== d) {
        idom[v] = d;
        changed = true;
      }
    }
  }
  return idom;
}

export function summariseHeap(s: Snapshot): HeapSummary {
  const nf = s.snapshot.meta.node_fields;
  const ef = s.snapshot.meta.edge_fields;
  const [nodeTypes] = s.snapshot.meta.node_types;
  const [edgeTypes] = s.snapshot.meta.edge_types;
  const N = nf.length;
  const E = ef.length;
  const n = s.nodes.length / N;
  const at = (field: string, fields: string[]) => fields.indexOf(field);
  const [fType, fName, fSelf, fEdges] = ['type', 'name', 'self_size', 'edge_count'].map((f) => at(f, nf));
  const [eType, eTo] = ['type', 'to_node'].map((f) => at(f, ef));
  const weak = edgeTypes.indexOf('weak');
  const firstEdge = new Int32Array(n + 1);
  for (let i = 0; i < n; i++) firstEdge[i + 1] = (firstEdge[i] ?? 0) + (s.nodes[i * N + (fEdges ?? 0)] ?? 0);
  const succ = (v: number, visit: (w: number) => void) => {
    for (let e = firstEdge[v] ?? 0; e < (firstEdge[v + 1] ?? 0); e++)
      if (s.edges[e * E + (eType ?? 0)] !== weak) visit((s.edges[e * E + (eTo ?? 0)] ?? 0) / N);
  };
  const idom = dominators(n, succ);
  const self = (v: number) => s.nodes[v * N + (fSelf ?? 0)] ?? 0;
  const className = (v: number) => {
    const type = nodeTypes[s.nodes[v * N + (fType ?? 0)] ?? 0] ?? '?';
    const name = s.strings[s.nodes[v * N + (fName ?? 0)] ?? 0] ?? '';
    // Objects by constructor; strings, code, arrays and the like by their V8 type.
    return type === 'object' || type === 'native' ? name : `(${type})`;
  };
  // Retained sizes: children before parents, in reverse of a BFS over the dominator tree.
  const retained = new Float64Array(n);
  const kids: number[][] = Array.from({ length: n }, () => []);
  for (let v = 1; v < n; v++) if ((idom[v] ?? -1) >= 0) kids[idom[v] ?? 0]?.push(v);
  const bfs = [0];
  for (let i = 0; i < bfs.length; i++) for (const k of kids[bfs[i] ?? 0] ?? []) bfs.push(k);
  for (let i = bfs.length - 1; i >= 0; i--) {
    const v = bfs[i] ?? 0;
    retained[v] = (retained[v] ?? 0) + self(v);
    if (v !== 0) retained[idom[v] ?? 0] = (retained[idom[v] ?? 0] ?? 0) + (retained[v] ?? 0);
  }
  const rows = new Map<string, ConstructorRow>();
  let totalSelfBytes = 0;
  for (let v = 0; v < n; v++) {
    const name = className(v);
    const row = rows.get(name) ?? { name, count: 0, selfBytes: 0, retainedBytes: 0 };
    row.count += 1;
    row.selfBytes += self(v);
    totalSelfBytes += self(v);
    // Count a retained size once per chain of its kind: an object dominated directly by one of the
    // same constructor is inside that one's retained size already (nesting through another
    // constructor is counted twice: an approximation, good enough to name the owner).
    const d = idom[v] ?? -1;
    if (d >= 0 && (d === 0 || className(d) !== name)) row.retainedBytes += retained[v] ?? 0;
    rows.set(name, row);
  }
  return { nodes: n, totalSelfBytes, rows: [...rows.values()] };
}

function arg(name: string): string | undefined {
  const i = process.argv.indexOf(name);
  return i >= 0 ? process.argv[i + 1] : undefined;
}

async function main(): Promise<void> {
  const file = process.argv[2];
  if (!file) throw new Error('usage: heap-summary.ts FILE.heapsnapshot [--top 25] [--json OUT]');
  const top = Number(arg('--top') ?? 25);
  const summary = summariseHeap(JSON.parse(await readFile(file, 'utf8')) as Snapshot);
  const mb = (b: number) => (b / 1e6).toFixed(2).padStart(8);
  const print = (title: string, key: 'selfBytes' | 'retainedBytes') => {
    console.log(`\n${title}`);
    console.log('      self MB  retained MB     count  constructor');
    for (const r of [...summary.rows].sort((a, b) => b[key] - a[key]).slice(0, top))
      console.log(
        `     ${mb(r.selfBytes)}     ${mb(r.retainedBytes)}  ${String(r.count).padStart(8)}  ${r.name}`,
      );
  };
  console.log(`${file}: ${summary.nodes} nodes, ${(summary.totalSelfBytes / 1e6).toFixed(1)} MB`);
  print('by self size', 'selfBytes');
  print('by retained size', 'retainedBytes');
  const out = arg('--json');
  if (out) await writeFile(out, JSON.stringify(summary, null, 2));
}

if (require.main === module)
  main().catch((err: unknown) => {
    console.error(err);
    process.exit(1);
  });

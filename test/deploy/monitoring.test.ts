/**
 * deploy/monitoring: the Grafana dashboard and the alert rules speak of metrics the worker exposes
 * (workflows/metric-names.ts, with the exporter's `_total` / histogram suffixes), and the dashboard
 * shows every one of them.
 */
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import path from 'node:path';
import { describe, it } from 'node:test';
import { parse } from 'yaml';
import { METRIC } from '../../workflows/metric-names';
import { ROOT } from '../support/tools';

const DIR = path.join(ROOT, 'deploy', 'monitoring');
const KNOWN = new Set<string>(Object.values(METRIC));

function amiflowMetrics(text: string): Set<string> {
  const names = text.match(/amiflow_[a-z_]+/g) ?? [];
  return new Set(names.map((n) => n.replace(/_(total|bucket|count|sum)$/, '')));
}

void describe('monitoring', () => {
  void it('GIVEN the dashboard WHEN read THEN it charts every amiflow metric and only those', () => {
    const dashboard = JSON.parse(readFileSync(path.join(DIR, 'grafana-dashboard.json'), 'utf8')) as {
      panels: { targets: { expr: string }[] }[];
    };
    const used = amiflowMetrics(dashboard.panels.flatMap((p) => p.targets.map((t) => t.expr)).join('\n'));
    assert.deepEqual([...used].sort(), [...KNOWN].sort());
  });

  void it('GIVEN the alert rules WHEN read THEN each has an expression on known metrics and a summary', () => {
    const rules = (
      parse(readFileSync(path.join(DIR, 'alerts.yaml'), 'utf8')) as {
        groups: { rules: { alert: string; expr: string; annotations: { summary: string } }[] }[];
      }
    ).groups.flatMap((g) => g.rules);
    const names = rules.map((r) => r.alert);
    for (const wanted of ['AmiflowGoldenRunStuck', 'AmiflowCompensationFailed', 'AmiflowAwsThrottled'])
      assert.ok(names.includes(wanted), `an alert ${wanted}`);
    for (const r of rules) {
      assert.ok(r.annotations.summary, `${r.alert} has a summary`);
      for (const m of amiflowMetrics(r.expr))
        assert.ok(KNOWN.has(m), `${r.alert} uses ${m}, which the worker does not expose`);
    }
  });
});

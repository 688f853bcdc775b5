/**
 * What node:vm's `timeout` option costs one call into a context: Node starts and joins a watchdog
 * thread for every such call. The SDK's reusable V8 context calls into the workflow context with
 * `timeout: isolateExecutionTimeoutMs` (5 s) several times per activation, so every replay after an
 * eviction pays it (docs/fleet-waits.md, "Where the release's CPU goes"). Seconds to run.
 *
 *   node --import tsx bench/vm-call-timeout.ts
 */
import vm from 'node:vm';

const CALLS = 20_000;

function measure(label: string, options: vm.RunningScriptOptions, calls: number): void {
  const context = vm.createContext({ n: 0 });
  const script = new vm.Script('n += 1');
  const cpu0 = process.cpuUsage();
  const t0 = process.hrtime.bigint();
  for (let i = 0; i < calls; i += 1) script.runInContext(context, options);
  const wallUs = Number(process.hrtime.bigint() - t0) / 1e3 / calls;
  const cpu = process.cpuUsage(cpu0);
  const cpuUs = (cpu.user + cpu.system) / calls;
  console.log(`${label}: ${wallUs.toFixed(1)} µs wall, ${cpuUs.toFixed(1)} µs CPU per call (${calls} calls)`);
}

measure('warm-up', { timeout: 5000 }, 2000);
for (let round = 0; round < 2; round += 1) {
  measure('no timeout', {}, CALLS);
  measure('timeout 5000 (the SDK default)', { timeout: 5000 }, CALLS);
}

// Counts the calls into node:vm contexts per thread (and the wall time inside them), appending one
// JSON line every 5 s to VMCOUNT_FILE, to count the SDK's calls into the workflow context per run
// (each pays node:vm's watchdog thread: bench/vm-call-timeout.ts). A preload for the light bench's
// worker, whose workflow thread inherits it:
//   AMIFLOW_BENCH_LIGHT_NODE_FLAGS='--require /abs/path/scripts/vm-call-count.mjs' (require, not import:
//   only --require preloads reach worker threads; Node 24 requires this ES module)
//   AMIFLOW_BENCH_WORKER_VMCOUNT_FILE=FILE AMIFLOW_BENCH_WORKER_BENCH_RELEASE_MARK_FILE=MARK
// Lines carry the monotonic clock (µs) that the release mark uses.
import fs from 'node:fs';
import vm from 'node:vm';
import { threadId } from 'node:worker_threads';

const out = process.env.VMCOUNT_FILE;
if (out) {
  let calls = 0;
  let withTimeout = 0;
  let wallNs = 0n;
  const runInContext = vm.Script.prototype.runInContext;
  vm.Script.prototype.runInContext = function counted(context, options) {
    calls += 1;
    if (options && options.timeout) withTimeout += 1;
    const t0 = process.hrtime.bigint();
    try {
      return runInContext.call(this, context, options);
    } finally {
      wallNs += process.hrtime.bigint() - t0;
    }
  };
  setInterval(() => {
    const line = {
      monoUs: String(process.hrtime.bigint() / 1000n),
      threadId,
      calls,
      withTimeout,
      wallMs: Number(wallNs / 1000000n),
    };
    fs.appendFileSync(out, `${JSON.stringify(line)}\n`);
  }, 5000).unref();
}

/**
 * A Temporal Runtime that logs errors only, so test output shows test results rather
 * than worker state changes. Call it before anything creates the Runtime (worker, test environment).
 */
import { DefaultLogger, Runtime } from '@temporalio/worker';

let installed = false;
export function installQuietRuntime(): void {
  if (installed) return;
  installed = true;
  Runtime.install({
    logger: new DefaultLogger('ERROR'),
    // Core's warnings include the expected "activity not found on completion" of cancelled runs.
    telemetryOptions: { logging: { filter: { core: 'ERROR', other: 'ERROR' } } },
  });
}

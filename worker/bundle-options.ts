/**
 * The one set of options every workflow bundle is built with: the worker that bundles at start,
 * `npm run build`'s prebuilt bundle (scripts/bundle-workflows.ts), the test kit's
 * (devkit/temporal.ts) and the chaos stack's (devkit/chaos/stack.ts). One constant, so what the
 * tests prove is what ships.
 */
import type { BundleOptions } from '@temporalio/worker';
import { LeanWorkflowSource } from './lean-workflow-source';

export const workflowsPath = require.resolve('../workflows');

/**
 * Modules evaluated once per worker V8 context and shared (deep-frozen) by every workflow in it,
 * instead of once per cached workflow and per replay (issue 13): zod, every contract schema and
 * the workflow code itself. See workflows/shared-modules.ts for why that is safe.
 */
export const sharedWorkflowModules: readonly string[] = [require.resolve('../workflows/shared-modules')];

/**
 * The workflow bundle as every worker holds it twice (main thread and workflow thread), made small:
 *
 * - its source map without the sources' text and with lines only (webpack
 *   `inline-nosources-cheap-module-source-map`): stack traces still map to the TypeScript file and
 *   line (the column reads 0), while every worker stops holding ~2 MB of embedded sources in both
 *   threads, and the workflow thread's parsed mappings (the SDK maps the stack of every promise a
 *   workflow creates) shrink with the map: 145 K characters of mappings instead of 561 K, ~5 MB less
 *   WebAssembly memory once parsed (docs/sizing.md);
 * - no module path banners (`output.pathinfo`), no comments, no indentation and no character above
 *   ASCII (worker/lean-workflow-source.ts): 1.1 MB of one-byte text instead of 1.9 MB of two-byte,
 *   line for line the same, so the map above still holds.
 */
export function leanWorkflowBundle<C extends { devtool?: unknown; output?: object; plugins?: unknown[] }>(
  config: C,
): C {
  return {
    ...config,
    devtool: 'inline-nosources-cheap-module-source-map',
    output: { ...config.output, pathinfo: false },
    plugins: [...(config.plugins ?? []), new LeanWorkflowSource()],
  };
}

/** `bundleWorkflowCode`'s options (add a `logger` where wanted); `bundlerOptions` takes the same minus the path. */
export const workflowBundleOptions = {
  workflowsPath,
  webpackConfigHook: leanWorkflowBundle,
  preloadModules: [...sharedWorkflowModules],
} satisfies BundleOptions;

/** Moved to devkit/sandbox-worker.ts (the local stack lives outside the tests); kept so existing imports compile. */
export * from '../../devkit/sandbox-worker';

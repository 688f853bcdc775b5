/** Moved to devkit/fake-fleet.ts (the local stack lives outside the tests); kept so existing imports compile. */
export * from '../../devkit/fake-fleet';

/** Moved to devkit/temporal.ts (the local stack lives outside the tests); kept so existing imports compile. */
export * from '../../devkit/temporal';

/** Moved to devkit/sandbox-ec2.ts (the local stack lives outside the tests); kept so existing imports compile. */
export * from '../../devkit/sandbox-ec2';

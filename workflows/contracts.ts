/**
 * Kept so existing imports compile: the contracts live in contracts/ (one file per feature), and
 * new code imports them from there.
 */
export * from '../contracts';

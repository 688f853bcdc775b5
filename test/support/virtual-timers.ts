/** Virtual timers live in devkit/virtual-timers.ts (the benchmarks use them too). */
export * from '../../devkit/virtual-timers';

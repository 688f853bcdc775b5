/** Where the local tools are: environment overrides first, then what scripts/setup-tools.sh installed. */
import { existsSync } from 'node:fs';
import path from 'node:path';

export const ROOT = path.resolve(__dirname, '..');
const VENV_BIN = path.join(ROOT, '.tools', 'venv', 'bin');

function tool(envName: string, binary: string): string {
  const override = process.env[envName];
  if (override) return override;
  const p = path.join(VENV_BIN, binary);
  if (!existsSync(p)) {
    throw new Error(
      `${binary} is not installed: run 'npm run setup' (or set ${envName} to a binary of your own)`,
    );
  }
  return p;
}

export const temporalCli = (): string => tool('AMIFLOW_TEMPORAL_CLI', 'temporal');
export const temporalTestServer = (): string => tool('AMIFLOW_TEMPORAL_TEST_SERVER', 'temporal-test-server');
export const motoServer = (): string => tool('AMIFLOW_MOTO_SERVER', 'moto_server');

const VALIDATORS_BIN = path.join(ROOT, '.tools', 'validators', 'bin');

/**
 * A validator installed by scripts/setup-tools.sh (scripts/validator-versions.txt), an override,
 * or undefined with the reason, so a test can skip saying why rather than pass untested.
 */
export function validator(envName: string, binary: string): { path: string } | { missing: string } {
  const override = process.env[envName];
  if (override)
    return existsSync(override) ? { path: override } : { missing: `${envName}=${override} does not exist` };
  for (const dir of [VALIDATORS_BIN, VENV_BIN]) {
    const p = path.join(dir, binary);
    if (existsSync(p)) return { path: p };
  }
  return { missing: `${binary} is not installed: run 'npm run setup' (or set ${envName})` };
}

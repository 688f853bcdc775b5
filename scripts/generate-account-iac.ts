/**
 * Writes the target-account IaC from client/account-iac.ts (which takes the KMS statements from
 * client/policies.ts): `node --import tsx scripts/generate-account-iac.ts` after changing either.
 * test/deploy/account-iac.test.ts fails while the committed files are stale.
 */
import { writeFileSync } from 'node:fs';
import path from 'node:path';
import { accountCloudFormation, accountTerraform } from '../client/account-iac';

export const ROOT = path.resolve(__dirname, '..');
export const GENERATED = {
  cloudFormation: path.join(ROOT, 'deploy/accounts/cloudformation/amiflow-target-account.json'),
  terraform: path.join(ROOT, 'deploy/accounts/terraform/amiflow-target-account/main.tf.json'),
} as const;

export function render(): Record<keyof typeof GENERATED, string> {
  return {
    cloudFormation: `${JSON.stringify(accountCloudFormation(), null, 2)}\n`,
    terraform: `${JSON.stringify(accountTerraform(), null, 2)}\n`,
  };
}

if (require.main === module) {
  const out = render();
  for (const key of Object.keys(GENERATED) as (keyof typeof GENERATED)[]) {
    writeFileSync(GENERATED[key], out[key]);
    console.log(`wrote ${path.relative(ROOT, GENERATED[key])}`);
  }
}

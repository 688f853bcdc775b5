/**
 * Tier 2, issue 16 point 2 where an image is looked up by name: DescribeImages leaves disabled
 * images out unless `IncludeDisabled` (https://docs.aws.amazon.com/AWSEC2/latest/APIReference/API_DescribeImages.html),
 * and a disabled image keeps its name. A copy refused `InvalidAMIName.Duplicate` must find the
 * disabled image that holds the name and say so at once, not wait minutes for a name that a
 * deregistration would free and then blame an image "no longer visible".
 */
import { describe, it } from 'node:test';
import type { DescribeImagesCommandInput } from '@aws-sdk/client-ec2';
import { CopyImageCommand, DescribeImagesCommand } from '@aws-sdk/client-ec2';
import type { CopyImageActivityInput } from '../../activities/copying';
import { FailureType, WORKFLOW_TYPES } from '../../workflows/contracts';
import { awsError, nonRetryableFailure } from './failures';
import { IMAGE_ID, REGION, RUN_ID, WORKFLOW_ID } from './fixtures';
import { activityEnv, harness } from './harness';

const HOLDER = 'ami-0d15ab1ed0d15ab1e';
const NAME = 'web-2025-01-01';

const copyInput: CopyImageActivityInput = {
  source: { region: REGION, imageId: IMAGE_ID },
  destination: { region: 'eu-central-1' },
  imageName: NAME,
  tags: {},
  workflowId: WORKFLOW_ID,
  runId: RUN_ID,
  workflowType: WORKFLOW_TYPES.copyImage,
  purpose: 'copy',
};

void describe('copyImage: a name held by a disabled image', () => {
  void it('GIVEN a disabled image of someone else named as the copy WHEN CopyImage answers InvalidAMIName.Duplicate THEN ImageNameTaken at once, naming that image', async () => {
    const h = harness();
    // EC2 as documented: the disabled image is described only when asked for.
    h.ec2Mock.on(DescribeImagesCommand).callsFake((input: DescribeImagesCommandInput) => {
      const byName = input.Filters?.some((f) => f.Name === 'name');
      return {
        Images:
          byName && input.IncludeDisabled === true
            ? [{ ImageId: HOLDER, Name: NAME, State: 'disabled', Tags: [] }]
            : [],
      };
    });
    h.ec2Mock.on(CopyImageCommand).rejects(awsError('InvalidAMIName.Duplicate', 400));

    await nonRetryableFailure(
      activityEnv().run(h.activities.copyImage, copyInput),
      FailureType.ImageNameTaken,
      `an image named '${NAME}' already exists`,
      HOLDER,
    );
  });
});

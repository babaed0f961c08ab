import { test } from 'node:test';
import assert from 'node:assert/strict';
import { STACK_LINE, cli } from './helpers.js';

// Flags are checked before the synthetic data are generated, so each of these returns at once.
test('train --data synthetic: bad flags exit 2 with a clear message and no stack trace', () => {
  const cases: [string[], RegExp][] = [
    [['--iters', '0'], /--iters must be >= 1, got 0/],
    [['--iters', '2.5'], /--iters must be an integer, got '2\.5'/],
    [['--iters', '5', '--epochs', '2'], /give either --iters or --epochs, not both/],
    [['--arch', 'retinanet_resnet9000'], /unknown --arch 'retinanet_resnet9000'; available: .*retinanet_resnet50_fpn/],
    [['--arch', 'retinanet_resnet50_fpn', '--config', 'x.json'], /give either --arch or --config, not both/],
    [['--batch', 'two'], /--batch must be an integer, got 'two'/],
    [['--loss', 'hinge'], /--loss must be focal, ce or focal-star, got 'hinge'/],
    [['--scale-jitter', '640,-1'], /--scale-jitter must be a comma-separated list of positive integers/],
    [['--weights', 'no/such/file.safetensors'], /--weights no\/such\/file\.safetensors not found/],
    [['--no-such-flag'], /Unknown option '--no-such-flag'/],
    [['--time-budget', '15 minutes'], /--time-budget must be a positive duration such as 900, 900s, 15m or 1\.5h, got '15 minutes'/],
    [['--time-budget', '0'], /--time-budget must be a positive duration/],
  ];
  for (const [extra, message] of cases) {
    const r = cli('train', '--data', 'synthetic', ...extra);
    assert.equal(r.status, 2, `${extra.join(' ')}: ${r.stderr}`);
    assert.match(r.stderr, message);
    assert.doesNotMatch(r.stderr, STACK_LINE);
  }
});

test('train without --data, with a missing dataset or a bad --resume exits 2', () => {
  for (const [args, message] of [
    [[], /--data is required/],
    [['--data', 'no/such/dataset.json'], /dataset no\/such\/dataset\.json not found/],
    [['--resume', 'no/such/run'], /--resume no\/such\/run: no checkpoint there/],
  ] as [string[], RegExp][]) {
    const r = cli('train', ...args);
    assert.equal(r.status, 2, `${args.join(' ')}: ${r.stderr}`);
    assert.match(r.stderr, message);
    assert.doesNotMatch(r.stderr, STACK_LINE);
  }
});

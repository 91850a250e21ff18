// Bad input is reported as bad input (exit 2) even when etcd is down: every command checks its flags and arguments
// before its first etcd call.

import assert from 'node:assert/strict'
import {describe, test} from 'node:test'

import {runCli, show} from '../helpers/cli.js'

const DOWN = ['--endpoints', 'http://127.0.0.1:1', '--dial-timeout', '1s']

describe('usage errors come before connecting', () => {
  const cases: Array<[string[], RegExp]> = [
    [['leases', 'reserve'], /give a SUBNET or --public-ip/],
    [['leases', 'release'], /give SUBNET arguments or --stale/],
    [['leases', 'release', '10.5.1.0/24', '--stale'], /give SUBNET arguments or --stale/],
    [['leases', 'unreserve', 'x'], /invalid subnet "x"/],
    [['leases', 'unreserve', '10.5.1.0/24', '--ttl', '0s'], /--ttl must be at least 1s/],
    [['network', 'expand', '--to', 'garbage'], /invalid --to "garbage"/],
    [['network', 'expand', '--to', '10.0.0.0/8', '--service-cidr', 'nope'], /invalid --service-cidr "nope"/],
    [['network', 'init', '--network', '10.0.0.0/29'], /network is too small/],
    // Read commands: their source connects on its first read, after the service has checked its input.
    [['leases', 'ls', '--public-ip', '1.2.3'], /invalid --public-ip "1\.2\.3"/],
    [['leases', 'ls', '--subnet', 'nope', '--etcd-api', 'v2'], /invalid --subnet "nope"/],
    [['subnet-env'], /give exactly one of --public-ip or --subnet/],
    [['subnet-env', '--subnet', '10.5.0.0/33'], /invalid --subnet/],
    [['doctor', '--flanneld-version', 'banana'], /invalid --flanneld-version "banana"/],
    [['network', 'show', '--snapshot', 'x.json', '--etcd-api', 'v2'], /cannot be read with --etcd-api v2/],
    // Connection flags are checked before any I/O too.
    [['network', 'show', '--cert', 'c.pem'], /--cert and --key must be given together \(got only --cert c\.pem\)/],
    [['leases', 'reserve', '10.5.1.0/24', '--key', 'k.pem'], /--cert and --key must be given together/],
  ]
  for (const [args, message] of cases) {
    test(args.join(' '), async () => {
      const r = await runCli([...args, ...DOWN])
      assert.equal(r.code, 2, show(r))
      assert.match(r.stderr, message)
    })
  }

  test('valid input with etcd down still exits 69 naming the endpoint', async () => {
    const r = await runCli(['network', 'expand', '--to', '10.0.0.0/8', ...DOWN])
    assert.equal(r.code, 69, show(r))
    assert.match(r.stderr, /etcd unreachable at http:\/\/127\.0\.0\.1:1/)
  })
})

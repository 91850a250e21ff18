import assert from 'node:assert/strict'
import {test} from 'node:test'

import {isHostAddress, vxlanLocalAddress} from '../../src/core/iface.js'
import {parseIPv4} from '../../src/core/ipv4.js'

const ip = (s: string) => parseIPv4(s)!
const links = [
  {addresses: [{ip: ip('127.0.0.1'), prefix: 8}]},
  {addresses: [{ip: ip('198.18.0.1'), prefix: 24}]},
  {addresses: []},
]

test('isHostAddress: any address of any link', () => {
  assert.equal(isHostAddress(links, ip('198.18.0.1')), true)
  assert.equal(isHostAddress(links, ip('198.18.100.1')), false)
})

test('vxlanLocalAddress: the PublicIP when the host has it, else the interface address (1:1 NAT)', () => {
  const iface = {address: ip('198.18.0.1'), publicIP: ip('198.18.100.1')}
  assert.equal(vxlanLocalAddress(iface, false), ip('198.18.0.1'))
  assert.equal(vxlanLocalAddress({...iface, publicIP: ip('198.18.0.1')}, true), ip('198.18.0.1'))
  assert.equal(vxlanLocalAddress(iface, true), ip('198.18.100.1'))
})

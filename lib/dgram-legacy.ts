// The old surface node:dgram still carries, installed on the facade's prototype as Node
// installs it: `sendto()`, and the DEP0112 members (`_handle`, `_receiving`, `_bindState`,
// `_queue`, `_reuseAddr`, `_healthCheck()`, `_stopReceiving()`), each warning once through
// util.deprecate with Node's text and code.

import { deprecate } from 'node:util'
import { dgram as E } from './errors.js'
import { healthCheck } from './dgram-bind.js'
import { kState } from './dgram-state.js'
import type { Facade, State } from './dgram-state.js'
import { dgramString } from './validate.js'

type Proto = Facade & { send(...args: unknown[]): void }

/** A deprecated accessor over one state field, warning as Node's does. */
function accessor(proto: object, name: string, get: (s: State) => unknown, set: (s: State, v: unknown) => void): void {
  const msg = `Socket.prototype.${name} is deprecated`
  Object.defineProperty(proto, name, {
    get: deprecate(
      function (this: Facade) {
        return get(this[kState])
      },
      msg,
      'DEP0112',
    ),
    set: deprecate(
      function (this: Facade, v: unknown) {
        set(this[kState], v)
      },
      msg,
      'DEP0112',
    ),
    configurable: true,
  })
}

/** Socket.prototype.sendto(buffer, offset, length, port, address[, callback]): Node's legacy form. */
function sendto(this: Proto, buffer: unknown, offset: unknown, length: unknown, port: unknown, address: unknown, callback: unknown): void {
  if (typeof offset !== 'number') throw E.invalidArgType('offset', 'of type number', offset)
  if (typeof length !== 'number') throw E.invalidArgType('length', 'of type number', length)
  if (typeof port !== 'number') throw E.invalidArgType('port', 'of type number', port)
  dgramString(address, 'address')
  this.send(buffer, offset, length, port, address, callback)
}

/** Installs sendto() and the DEP0112 members on `proto`. */
export function installLegacy(proto: Proto): void {
  Object.defineProperty(proto, 'sendto', { value: sendto, writable: true, configurable: true })
  // `_handle` is the UdpSocket behind the socket (Node's is its libuv handle); replacing it is
  // not possible here, so the setter only warns.
  accessor(
    proto,
    '_handle',
    (s) => s.sock,
    () => {},
  )
  accessor(
    proto,
    '_receiving',
    (s) => s.receiving,
    (s, v) => void (s.receiving = !!v),
  )
  accessor(
    proto,
    '_bindState',
    (s) => s.bindState,
    (s, v) => void (s.bindState = v as number),
  )
  accessor(
    proto,
    '_queue',
    (s) => s.queue,
    (s, v) => void (s.queue = v as State['queue']),
  )
  accessor(
    proto,
    '_reuseAddr',
    (s) => s.reuseAddr,
    (s, v) => void (s.reuseAddr = v as boolean | undefined),
  )
  Object.defineProperty(proto, '_healthCheck', {
    value: deprecate(
      function (this: Facade) {
        healthCheck(this)
      },
      'Socket.prototype._healthCheck() is deprecated',
      'DEP0112',
    ),
    writable: true,
    configurable: true,
  })
  Object.defineProperty(proto, '_stopReceiving', {
    value: deprecate(
      function (this: Facade) {
        const state = this[kState]
        if (!state.receiving) return
        if (state.unsubscribe) state.unsubscribe()
        state.unsubscribe = null
        state.receiving = false
      },
      'Socket.prototype._stopReceiving() is deprecated',
      'DEP0112',
    ),
    writable: true,
    configurable: true,
  })
}

// fault-server.js
//    A fault-injecting OData server for the stocktech_sync integration tests.
//    The CAP test ERP cannot fail on purpose, so this server plays an ERP that
//    responds with rate limits, server errors, broken bodies, endless paging
//    and poison records, and an SAP Gateway that enforces CSRF tokens and
//    ETags on writes. It has no dependencies beyond Node.js 20 and listens on
//    127.0.0.1 only. The SAP-style error codes (/IWFND/..., ZSTK/...) are
//    examples shaped like SAP message ids, not copied from a real system.
//
// Usage: node fault-server.js [PORT]    (default: $FAULT_PORT, else 4392)
//
// The first path segment selects the scenario, the rest is an OData service
// root as in the CAP test ERP:
//    /<scenario>/odata/v4/vehicle/Vehicles      OData V4 JSON ("value")
//    /<scenario>/odata/v2/vehicle/Vehicles      OData V2 JSON ("d.results")
// Paths that start with "/_" control the server (see the control endpoints
// below and the fault server section of README.md).
//
// Invariants:
//  - Each scenario counts its requests from 1; POST /_reset sets every count
//    back to 0 and restores the vehicles, the configuration and the CSRF
//    sessions. It keeps the request log, which DELETE /_requests clears.
//  - Read scenarios serve the same 40 vehicles, which never change. Writes
//    change a separate copy that only the gateway scenarios read.
'use strict'

const crypto = require('node:crypto')
const http = require('node:http')

const HOST = '127.0.0.1'
const DEFAULT_PORT = 4392

// Entries kept in the request log; older entries are dropped first.
const MAX_LOGGED_REQUESTS = 20000
// Largest write body read, in bytes; a larger one gets 413.
const MAX_REQUEST_BODY_BYTES = 1024 * 1024
// Rows per page when a request has neither $top nor Prefer: odata.maxpagesize.
const SERVER_PAGE_SIZE = 1000

// ---------------------------------------------------------------------------
// Vehicles
// ---------------------------------------------------------------------------

const VIN_VALUES = {
  A: 1, B: 2, C: 3, D: 4, E: 5, F: 6, G: 7, H: 8,
  J: 1, K: 2, L: 3, M: 4, N: 5, P: 7, R: 9,
  S: 2, T: 3, U: 4, V: 5, W: 6, X: 7, Y: 8, Z: 9,
}
const VIN_WEIGHTS = [8, 7, 6, 5, 4, 3, 2, 10, 0, 9, 8, 7, 6, 5, 4, 3, 2]

// Computes the 49 CFR 565 check digit of a 17-character VIN, '0'-'9' or 'X'.
function vinCheckDigit (vin) {
  let sum = 0
  for (let i = 0; i < 17; i++) {
    const c = vin[i]
    const value = c >= '0' && c <= '9' ? Number(c) : VIN_VALUES[c]
    sum += value * VIN_WEIGHTS[i]
  }
  const remainder = sum % 11
  return remainder === 10 ? 'X' : String(remainder)
}

// Builds a VIN from its 16 other characters with a correct check digit, so
// that the VIN passes the check even where the check digit is optional.
function makeVin (wmi, vds, yearCode, plant, serial) {
  const draft = wmi + vds + '0' + yearCode + plant + serial
  return draft.slice(0, 8) + vinCheckDigit(draft) + draft.slice(9)
}

const MODELS = [
  { wmi: 'WBA', vds: '5R110', model: 'G20', trim: '320I', price: 45900.5 },
  { wmi: 'WVW', vds: 'ZZZ1K', model: 'GOLF8', trim: 'LIFE', price: 31250 },
  { wmi: 'WDD', vds: '2050A', model: 'C200', trim: 'AVANTG', price: 52920.5 },
  { wmi: 'WAU', vds: 'ZZZF4', model: 'A4B9', trim: 'SPORT', price: 48300 },
  { wmi: 'WF0', vds: 'XXWPJ', model: 'KUGA', trim: 'TITAN', price: 38990.99 },
]
const DEALERS = [
  { code: '0000100001', name: 'Autohaus Münster GmbH' },
  { code: '0000100002', name: 'Garage Zürich AG' },
  { code: '0000100003', name: "Garage de l'Étoile Besançon" },
]
const SALES_STATUSES = ['A0', 'R1', 'S2', 'I3', 'D4', 'RT', 'BL']
const FIN_STATUSES = ['UP', 'FP', 'FI', 'CS', 'PD', 'RL']
const MAINT_STATUSES = ['0', '1', '2', '3']
const PDI_STATUSES = ['P0', 'P1', 'P2', 'P9']
const COLORS = ['A96', 'C3Z', '2Y2Y', 'LY9T']

// The seed timestamp of the first vehicle. Four vehicles share each
// timestamp, so a (modifiedAt, VIN) watermark has to carry ties across pages.
const SEED_EPOCH_MS = Date.parse('2025-03-03T08:00:00.000Z')
const VEHICLES_PER_TIMESTAMP = 4

// Builds vehicle number index with the property names of the CAP test ERP.
function makeVehicle (index) {
  const model = MODELS[index % MODELS.length]
  const dealer = DEALERS[index % DEALERS.length]
  const salesStatus = SALES_STATUSES[index % SALES_STATUSES.length]
  const inTransit = index % 9 === 4
  const sold = salesStatus !== 'A0' && salesStatus !== 'BL'
  const yearCode = index % 2 === 0 ? 'S' : 'R'
  const serial = String(100000 + index * 37).padStart(6, '0')
  const modifiedMs = SEED_EPOCH_MS + Math.floor(index / VEHICLES_PER_TIMESTAMP) * 1000
  const modifiedAt = new Date(modifiedMs).toISOString()
  return {
    VIN: makeVin(model.wmi, model.vds, yearCode, 'A', serial),
    Model: model.model,
    ModelYear: yearCode === 'S' ? 2025 : 2024,
    Trim: model.trim,
    ColorCode: COLORS[index % COLORS.length],
    EngineNo: `EN${String(700000 + index * 13)}`,
    Dealer: dealer.code,
    DealerName: dealer.name,
    SalesStatus: salesStatus,
    FinStatus: FIN_STATUSES[index % FIN_STATUSES.length],
    ListPrice: model.price + index * 10,
    Currency: 'EUR',
    SalesOrder: sold ? String(4500000000 + index) : null,
    Customer: sold ? String(1000000 + index * 7).padStart(10, '0') : null,
    StorageBin: inTransit ? null : `Y${1 + (index % 4)}-H-${String(index).padStart(3, '0')}`,
    MaintStatus: MAINT_STATUSES[index % MAINT_STATUSES.length],
    PdiStatus: PDI_STATUSES[index % PDI_STATUSES.length],
    InTransit: inTransit,
    ArrivalDate: inTransit ? null : new Date(modifiedMs - (index + 5) * 86400000).toISOString().slice(0, 10),
    Mileage: 5 + index * 3,
    createdAt: new Date(SEED_EPOCH_MS - 86400000).toISOString(),
    createdBy: 'seed',
    modifiedAt,
    modifiedBy: 'seed',
  }
}

// The 40 vehicles that every read scenario serves. Frozen: writes go to
// gatewayStore instead.
const VEHICLES = Object.freeze(
  Array.from({ length: 40 }, (_, i) => Object.freeze(makeVehicle(i))))

// The poison page: six good vehicles that no other scenario serves, then an
// invalid VIN (it contains the letter I), a SalesStatus code outside the code
// table and a ListPrice that is not a number.
function makePoisonRecords () {
  const good = Array.from({ length: 6 }, (_, i) => makeVehicle(100 + i))
  const invalidVin = { ...makeVehicle(110), VIN: 'WBA5R110XSA10I000' }
  const unknownStatus = { ...makeVehicle(111), SalesStatus: 'ZZ' }
  const invalidPrice = { ...makeVehicle(112), ListPrice: 'N/A' }
  return [...good, invalidVin, unknownStatus, invalidPrice]
}
const POISON_RECORDS = Object.freeze(makePoisonRecords())

// Property types for writes and for $filter comparisons.
const PROPERTY_TYPES = {
  VIN: { type: 'string', maxLength: 17 },
  Model: { type: 'string', maxLength: 10 },
  ModelYear: { type: 'integer' },
  Trim: { type: 'string', maxLength: 10 },
  ColorCode: { type: 'string', maxLength: 4 },
  EngineNo: { type: 'string', maxLength: 20 },
  Dealer: { type: 'string', maxLength: 10 },
  DealerName: { type: 'string', maxLength: 60 },
  SalesStatus: { type: 'string', maxLength: 2, codes: SALES_STATUSES },
  FinStatus: { type: 'string', maxLength: 2, codes: FIN_STATUSES },
  ListPrice: { type: 'decimal' },
  Currency: { type: 'string', maxLength: 3 },
  SalesOrder: { type: 'string', maxLength: 10 },
  Customer: { type: 'string', maxLength: 10 },
  StorageBin: { type: 'string', maxLength: 20 },
  MaintStatus: { type: 'string', maxLength: 1, codes: MAINT_STATUSES },
  PdiStatus: { type: 'string', maxLength: 2, codes: PDI_STATUSES },
  InTransit: { type: 'boolean' },
  ArrivalDate: { type: 'date' },
  Mileage: { type: 'integer' },
  createdAt: { type: 'datetime', readOnly: true },
  createdBy: { type: 'string', readOnly: true },
  modifiedAt: { type: 'datetime', readOnly: true },
  modifiedBy: { type: 'string', readOnly: true },
}

function etagOf (vehicle) {
  return `W/"${vehicle.modifiedAt}"`
}

// ---------------------------------------------------------------------------
// OData rendering
// ---------------------------------------------------------------------------

// Renders a vehicle as an OData V2 entry: /Date()/ timestamps, decimals as
// strings with two places, as SAP Gateway writes them, and __metadata.
function toV2Entry (vehicle, serviceUrl) {
  const entry = {
    __metadata: {
      type: 'VehicleService.Vehicles',
      uri: `${serviceUrl}Vehicles('${vehicle.VIN}')`,
      etag: etagOf(vehicle),
    },
  }
  for (const [name, value] of Object.entries(vehicle)) {
    const type = PROPERTY_TYPES[name] ? PROPERTY_TYPES[name].type : 'string'
    if (value === null || value === undefined) {
      entry[name] = null
    } else if (type === 'datetime') {
      entry[name] = `/Date(${Date.parse(value)}+0000)/`
    } else if (type === 'date') {
      entry[name] = `/Date(${Date.parse(value + 'T00:00:00Z')})/`
    } else if (type === 'decimal' && typeof value === 'number') {
      entry[name] = value.toFixed(2)
    } else {
      entry[name] = value
    }
  }
  return entry
}

function toV4Entry (vehicle) {
  return { ...vehicle, '@odata.etag': etagOf(vehicle) }
}

// Builds a collection body. page: { records, count, nextLink }.
function collectionBody (version, serviceUrl, page) {
  if (version === 'v2') {
    const d = { results: page.records.map((v) => toV2Entry(v, serviceUrl)) }
    if (page.count !== undefined) d.__count = String(page.count)
    if (page.nextLink !== undefined) d.__next = serviceUrl + page.nextLink
    return { d }
  }
  const body = { '@odata.context': '$metadata#Vehicles' }
  if (page.count !== undefined) body['@odata.count'] = page.count
  if (page.nextLink !== undefined) body['@odata.nextLink'] = page.nextLink
  body.value = page.records.map(toV4Entry)
  return body
}

// An OData error body: V4 has a string message, V2 {"lang", "value"}.
function errorBody (version, code, message) {
  if (version === 'v2') {
    return { error: { code, message: { lang: 'en', value: message } } }
  }
  return { error: { code, message } }
}

function contentTypeOf (version) {
  return version === 'v2'
    ? 'application/json'
    : 'application/json;odata.metadata=minimal;IEEE754Compatible=false'
}

function sendJson (res, status, body, headers = {}) {
  const text = JSON.stringify(body)
  res.writeHead(status, {
    'Content-Type': 'application/json',
    'Content-Length': Buffer.byteLength(text),
    ...headers,
  })
  res.end(text)
}

function sendError (res, version, status, code, message, headers = {}) {
  sendJson(res, status, errorBody(version, code, message), headers)
}

// ---------------------------------------------------------------------------
// $filter, $orderby and paging
// ---------------------------------------------------------------------------

class QueryError extends Error {}

// Splits a $filter expression into tokens: parentheses, quoted strings
// ('' escapes a quote), typed literals such as datetimeoffset'...', and
// words (property names, operators, numbers, unquoted timestamps).
function tokenizeFilter (text) {
  const tokens = []
  let i = 0
  while (i < text.length) {
    const c = text[i]
    if (c === ' ') {
      i++
    } else if (c === '(' || c === ')') {
      tokens.push({ kind: c })
      i++
    } else if (c === "'") {
      let value = ''
      i++
      for (;;) {
        if (i >= text.length) throw new QueryError(`unterminated string literal in $filter "${text}"`)
        if (text[i] === "'" && text[i + 1] === "'") {
          value += "'"
          i += 2
        } else if (text[i] === "'") {
          i++
          break
        } else {
          value += text[i++]
        }
      }
      tokens.push({ kind: 'literal', value })
    } else {
      const match = /^[A-Za-z0-9_.:+\-]+/.exec(text.slice(i))
      if (!match) throw new QueryError(`unexpected character "${c}" in $filter "${text}"`)
      i += match[0].length
      // A typed V2 literal: datetimeoffset'2025-01-01T00:00:00Z'.
      if (/^(datetimeoffset|datetime|guid)$/.test(match[0]) && text[i] === "'") {
        const end = text.indexOf("'", i + 1)
        if (end < 0) throw new QueryError(`unterminated ${match[0]} literal in $filter "${text}"`)
        tokens.push({ kind: 'literal', value: text.slice(i + 1, end) })
        i = end + 1
      } else {
        tokens.push({ kind: 'word', value: match[0] })
      }
    }
  }
  return tokens
}

const COMPARISONS = ['eq', 'ne', 'gt', 'ge', 'lt', 'le']

// Parses a $filter into a predicate over a vehicle. Supports comparisons of
// a property with a literal, and, or, not and parentheses: enough for the
// keyset filters that stocktech_sync sends. Anything else raises QueryError.
function parseFilter (text) {
  const tokens = tokenizeFilter(text)
  let position = 0
  const peekWord = () => (tokens[position] && tokens[position].kind === 'word' ? tokens[position].value : null)

  function parseOr () {
    let left = parseAnd()
    while (peekWord() === 'or') {
      position++
      const right = parseAnd()
      const before = left
      left = (v) => before(v) || right(v)
    }
    return left
  }

  function parseAnd () {
    let left = parseUnary()
    while (peekWord() === 'and') {
      position++
      const right = parseUnary()
      const before = left
      left = (v) => before(v) && right(v)
    }
    return left
  }

  function parseUnary () {
    if (peekWord() === 'not') {
      position++
      const inner = parseUnary()
      return (v) => !inner(v)
    }
    if (tokens[position] && tokens[position].kind === '(') {
      position++
      const inner = parseOr()
      if (!tokens[position] || tokens[position].kind !== ')') throw new QueryError(`missing ")" in $filter "${text}"`)
      position++
      return inner
    }
    return parseComparison()
  }

  function parseComparison () {
    const property = peekWord()
    if (!property || !PROPERTY_TYPES[property]) {
      throw new QueryError(`$filter "${text}": expected a Vehicles property at token ${position + 1}`)
    }
    position++
    const operator = peekWord()
    if (!COMPARISONS.includes(operator)) {
      throw new QueryError(`$filter "${text}": expected one of ${COMPARISONS.join(', ')} after ${property}`)
    }
    position++
    const operand = tokens[position++]
    if (!operand || operand.kind === '(' || operand.kind === ')') {
      throw new QueryError(`$filter "${text}": missing value after ${property} ${operator}`)
    }
    const literal = operand.value === 'null' && operand.kind === 'word' ? null : operand.value
    const type = PROPERTY_TYPES[property].type
    return (v) => compareValues(type, v[property], literal, operator)
  }

  const predicate = parseOr()
  if (position !== tokens.length) throw new QueryError(`$filter "${text}": unexpected text after token ${position}`)
  return predicate
}

// Orders two property values of one type: timestamps by instant, numbers
// numerically, strings by UTF-16 code units (binary for ASCII VINs).
function orderValues (type, a, b) {
  if (type === 'datetime') return Date.parse(a) - Date.parse(b)
  if (type === 'integer' || type === 'decimal') return Number(a) - Number(b)
  if (type === 'boolean') return Number(a === true || a === 'true') - Number(b === true || b === 'true')
  if (a < b) return -1
  if (a > b) return 1
  return 0
}

function compareValues (type, value, literal, operator) {
  if (value === null || value === undefined || literal === null) {
    const equal = (value ?? null) === literal
    if (operator === 'eq') return equal
    if (operator === 'ne') return !equal
    return false
  }
  const order = orderValues(type, value, literal)
  switch (operator) {
    case 'eq': return order === 0
    case 'ne': return order !== 0
    case 'gt': return order > 0
    case 'ge': return order >= 0
    case 'lt': return order < 0
    default: return order <= 0
  }
}

// Parses "$orderby=modifiedAt asc,VIN asc" into a comparator.
function parseOrderBy (text) {
  const keys = (text || 'modifiedAt asc,VIN asc').split(',').map((part) => {
    const [property, direction = 'asc'] = part.trim().split(/ +/)
    if (!PROPERTY_TYPES[property] || !['asc', 'desc'].includes(direction)) {
      throw new QueryError(`invalid $orderby "${text}"`)
    }
    return { property, sign: direction === 'desc' ? -1 : 1, type: PROPERTY_TYPES[property].type }
  })
  return (a, b) => {
    for (const key of keys) {
      const order = orderValues(key.type, a[key.property], b[key.property])
      if (order !== 0) return key.sign * order
    }
    return 0
  }
}

function parseNonNegativeInteger (name, text) {
  if (text === null) return null
  if (!/^[0-9]+$/.test(text)) throw new QueryError(`invalid ${name} "${text}": expected a non-negative integer`)
  return Number(text)
}

// The page size the client asked for through Prefer: odata.maxpagesize.
function preferredPageSize (req) {
  const match = /odata\.maxpagesize=([0-9]+)/.exec(req.headers.prefer || '')
  return match ? Number(match[1]) : null
}

// Selects one page of records for a collection request. Like CAP, a $top
// returns at most $top rows and no next link. Without $top the server pages
// by Prefer: odata.maxpagesize (else SERVER_PAGE_SIZE) and links onward with
// an offset in $skiptoken. $select is ignored, so every property is sent.
function selectPage (ctx, records) {
  const query = ctx.url.searchParams
  const filterText = query.get('$filter')
  let rows = filterText ? records.filter(parseFilter(filterText)) : [...records]
  rows.sort(parseOrderBy(query.get('$orderby')))
  const count = rows.length
  const skip = parseNonNegativeInteger('$skip', query.get('$skip')) || 0
  const offset = parseNonNegativeInteger('$skiptoken', query.get('$skiptoken')) || 0
  const top = parseNonNegativeInteger('$top', query.get('$top'))
  rows = rows.slice(skip + offset)

  const page = { records: rows }
  if (query.get('$count') === 'true' || query.get('$inlinecount') === 'allpages') page.count = count
  if (top !== null) {
    page.records = rows.slice(0, top)
  } else {
    const size = preferredPageSize(ctx.req) || SERVER_PAGE_SIZE
    page.records = rows.slice(0, size)
    if (rows.length > size) {
      const next = new URLSearchParams(query)
      next.set('$skiptoken', String(offset + size))
      page.nextLink = `Vehicles?${next.toString().replace(/\+/g, '%20')}`
    }
  }
  return page
}

// Sends a collection page of records, or a single entity for
// Vehicles('VIN'), or the count for Vehicles/$count.
function serveRead (ctx, records) {
  const { res, version, resource } = ctx
  if (resource.kind === 'entity') {
    const vehicle = records.find((v) => v.VIN === resource.key)
    if (!vehicle) return sendError(res, version, 404, '404', `Vehicle '${resource.key}' not found`)
    const body = version === 'v2'
      ? { d: toV2Entry(vehicle, ctx.serviceUrl) }
      : { '@odata.context': '$metadata#Vehicles/$entity', ...toV4Entry(vehicle) }
    return sendJson(res, 200, body, { 'Content-Type': contentTypeOf(version), ETag: etagOf(vehicle) })
  }
  if (resource.kind === 'count') {
    res.writeHead(200, { 'Content-Type': 'text/plain' })
    return res.end(String(records.length))
  }
  if (resource.kind === 'service') {
    return sendJson(res, 200, { '@odata.context': '$metadata', value: [{ name: 'Vehicles', url: 'Vehicles' }] })
  }
  if (resource.kind === 'metadata') {
    res.writeHead(200, { 'Content-Type': 'application/xml' })
    return res.end('<?xml version="1.0" encoding="utf-8"?><edmx:Edmx Version="4.0" ' +
      'xmlns:edmx="http://docs.oasis-open.org/odata/ns/edmx"><edmx:DataServices/></edmx:Edmx>')
  }
  sendJson(res, 200, collectionBody(version, ctx.serviceUrl, selectPage(ctx, records)),
    { 'Content-Type': contentTypeOf(version) })
}

// The JSON text of a full collection page, for scenarios that break it.
function pageText (ctx, records) {
  return JSON.stringify(collectionBody(ctx.version, ctx.serviceUrl, selectPage(ctx, records)))
}

// ---------------------------------------------------------------------------
// Read scenarios
// ---------------------------------------------------------------------------

// Waits ms before calling send, unless the client closes the connection
// first; then the timer is cleared and nothing is sent.
function sendLater (ctx, ms, send) {
  const timer = setTimeout(() => {
    try {
      send()
    } catch (error) {
      sendHandlerError(ctx.req, ctx.res, ctx.version, error)
    }
  }, ms)
  ctx.res.on('close', () => clearTimeout(timer))
}

// Sends the first half of a page with the Content-Length of the whole page,
// then destroys the socket: the client sees the connection end mid-body.
function dropMidBody (ctx, text) {
  const body = Buffer.from(text)
  const { res } = ctx
  ctx.logEntry.outcome = 'dropped'
  res.writeHead(200, { 'Content-Type': contentTypeOf(ctx.version), 'Content-Length': body.length })
  res.write(body.subarray(0, Math.floor(body.length / 2)), () => res.destroy())
}

// Streams a valid page padded past bytes. Without content_length=1 in the
// query the body is chunked, so the client can only count what it receives.
function sendOversized (ctx, bytes) {
  const { res } = ctx
  const head = Buffer.from(JSON.stringify(collectionBody(ctx.version, ctx.serviceUrl, { records: VEHICLES.slice(0, 3) })).slice(0, -1) +
    ',"@fault.padding":"')
  const tail = Buffer.from('"}')
  const paddingBytes = Math.max(0, bytes - head.length - tail.length)
  const headers = { 'Content-Type': contentTypeOf(ctx.version) }
  if (ctx.url.searchParams.get('content_length') === '1') {
    headers['Content-Length'] = head.length + paddingBytes + tail.length
  }
  res.writeHead(200, headers)
  res.write(head)
  const chunk = Buffer.alloc(64 * 1024, 'x')
  let remaining = paddingBytes
  // Write as the socket drains, and stop when the client hangs up.
  const writeMore = () => {
    while (remaining > 0 && !res.destroyed) {
      const part = remaining >= chunk.length ? chunk : chunk.subarray(0, remaining)
      remaining -= part.length
      if (!res.write(part)) return res.once('drain', writeMore)
    }
    if (!res.destroyed) res.end(tail)
  }
  writeMore()
}

// A 200 whose JSON has the bytes C3 28 in a string: C3 starts a two-byte
// UTF-8 sequence and 28 cannot continue it.
function sendNonUtf8 (ctx) {
  const text = pageText(ctx, VEHICLES).replace('Autohaus M\u00fcnster', 'Autohaus M@@INVALID@@nster')
  const [before, after] = text.split('@@INVALID@@')
  const body = Buffer.concat([Buffer.from(before), Buffer.from([0xc3, 0x28]), Buffer.from(after)])
  ctx.res.writeHead(200, { 'Content-Type': contentTypeOf(ctx.version), 'Content-Length': body.length })
  ctx.res.end(body)
}

// A 200 with a complete HTTP message whose JSON stops in the middle.
function sendTruncated (ctx) {
  const text = pageText(ctx, VEHICLES)
  const body = Buffer.from(text.slice(0, Math.floor(text.length / 2)))
  ctx.res.writeHead(200, { 'Content-Type': contentTypeOf(ctx.version), 'Content-Length': body.length })
  ctx.res.end(body)
}

// Read scenarios by name. Each handler gets ctx (see handleScenario) and
// serves the read; writes to these scenarios get 405.
const READ_SCENARIOS = {
  // All vehicles, filtered and paged as the request specifies.
  ok: (ctx) => serveRead(ctx, VEHICLES),

  // Sends the page after config.slow_ms (default 30 s), or nothing when the
  // client disconnects first.
  slow: (ctx) => sendLater(ctx, config.slow_ms, () => serveRead(ctx, VEHICLES)),

  ratelimit: (ctx) => {
    if (ctx.count > 2) return serveRead(ctx, VEHICLES)
    sendError(ctx.res, ctx.version, 429, '429', 'Rate limit exceeded; retry after 1 second',
      { 'Retry-After': '1' })
  },

  // The first 503 has Retry-After as an HTTP-date 2 s ahead, the second
  // none, so the client waits once by the date and once by its backoff.
  unavailable: (ctx) => {
    if (ctx.count > 2) return serveRead(ctx, VEHICLES)
    const headers = { 'Content-Type': 'text/plain' }
    if (ctx.count === 1) headers['Retry-After'] = new Date(Date.now() + 2000).toUTCString()
    ctx.res.writeHead(503, headers)
    ctx.res.end('Service Unavailable: the ERP is in maintenance')
  },

  error500: (ctx) => sendError(ctx.res, 'v4', 500, 'SY/530', 'Internal error in the ERP'),

  truncated: sendTruncated,

  oversized: (ctx) => sendOversized(ctx, config.oversized_bytes),

  nonutf8: sendNonUtf8,

  html502: (ctx) => {
    ctx.res.writeHead(502, { 'Content-Type': 'text/html; charset=utf-8' })
    ctx.res.end('<!DOCTYPE html>\n<html><head><title>502 Bad Gateway - SAP Web Dispatcher</title></head>' +
      '<body><h1>Bad Gateway</h1><p>The backend system did not answer.</p></body></html>\n')
  },

  unauthorized: (ctx) => sendError(ctx.res, 'v2', 401, '/IWFND/CM_CONSUMER/101',
    'Logon failed: user name or password is incorrect',
    { 'WWW-Authenticate': 'Basic realm="SAP NetWeaver Application Server [ERP/100]"' }),

  forbidden: (ctx) => sendError(ctx.res, 'v2', 403, '/IWFND/CM_CONSUMER/102',
    'User STK_SYNC has no authorization for service ZSTK_VEHICLE_SRV'),

  notfound: (ctx) => sendError(ctx.res, 'v2', 404, '/IWFND/MED/170',
    "No service found for namespace '', name 'ZSTK_VEHICLE_SRV', version '0001'"),

  // The same first $top vehicles whatever the filter, so a keyset client
  // builds the same next request again.
  samepage: (ctx) => {
    const top = parseNonNegativeInteger('$top', ctx.url.searchParams.get('$top')) ?? 10
    const ordered = [...VEHICLES].sort(parseOrderBy(null))
    const page = { records: ordered.slice(0, top), count: VEHICLES.length }
    sendJson(ctx.res, 200, collectionBody(ctx.version, ctx.serviceUrl, page), { 'Content-Type': contentTypeOf(ctx.version) })
  },

  emptynext: (ctx) => {
    const page = { records: [], nextLink: 'Vehicles?$skiptoken=1' }
    sendJson(ctx.res, 200, collectionBody(ctx.version, ctx.serviceUrl, page), { 'Content-Type': contentTypeOf(ctx.version) })
  },

  // One short page: six good vehicles and three poison records, whatever
  // the filter.
  poison: (ctx) => {
    const page = { records: POISON_RECORDS, count: POISON_RECORDS.length }
    sendJson(ctx.res, 200, collectionBody(ctx.version, ctx.serviceUrl, page), { 'Content-Type': contentTypeOf(ctx.version) })
  },

  // Odd-numbered requests lose their connection halfway through the body.
  flaky: (ctx) => {
    if (ctx.count % 2 === 0 || ctx.resource.kind !== 'collection') return serveRead(ctx, VEHICLES)
    dropMidBody(ctx, pageText(ctx, VEHICLES))
  },
}

// ---------------------------------------------------------------------------
// SAP Gateway writes
// ---------------------------------------------------------------------------

const SESSION_COOKIE = 'SAP_SESSIONID_STK_100'
const WRITE_METHODS = ['PATCH', 'MERGE', 'PUT']

// The vehicles that writes change; restored by POST /_reset.
let gatewayStore = new Map()
// CSRF sessions by session id: { token, writesUsed }. A token expires once
// writesUsed reaches config.token_writes, read at each write, so a change of
// token_writes applies to tokens already issued.
let sessions = new Map()
// Successful writes by Repeatability-Request-ID: { etag }.
let repeatedWrites = new Map()

function resetGatewayState () {
  gatewayStore = new Map(VEHICLES.map((v) => [v.VIN, { ...v }]))
  sessions = new Map()
  repeatedWrites = new Map()
}

function newSecret () {
  return crypto.randomBytes(18).toString('base64url')
}

function cookieValue (req, name) {
  for (const part of (req.headers.cookie || '').split(';')) {
    const [key, ...value] = part.trim().split('=')
    if (key === name) return value.join('=')
  }
  return null
}

// The write method after X-HTTP-Method tunnelling (POST with MERGE).
function effectiveMethod (req) {
  const tunnelled = req.headers['x-http-method']
  if (req.method === 'POST' && tunnelled) return tunnelled.toUpperCase()
  return req.method
}

// Issues a CSRF token for X-CSRF-Token: Fetch on a GET or HEAD. A request
// with a known session cookie gets that session's token, or a new token when
// the old one is used up. Any other request starts a new session.
function issueCsrfToken (req, res) {
  let sessionId = cookieValue(req, SESSION_COOKIE)
  let session = sessionId ? sessions.get(sessionId) : undefined
  const cookies = []
  if (!session) {
    sessionId = newSecret()
    session = { token: null, writesUsed: 0 }
    sessions.set(sessionId, session)
    cookies.push(`${SESSION_COOKIE}=${sessionId}; path=/; HttpOnly`)
    cookies.push('sap-usercontext=sap-client=100; path=/')
  }
  if (!session.token || tokenExpired(session)) {
    session.token = newSecret()
    session.writesUsed = 0
  }
  res.setHeader('x-csrf-token', session.token)
  if (cookies.length > 0) res.setHeader('Set-Cookie', cookies)
}

function tokenExpired (session) {
  return config.token_writes > 0 && session.writesUsed >= config.token_writes
}

// Returns the session when the request carries the session cookie and its
// current, unexpired token; null otherwise.
function validCsrfSession (req) {
  const session = sessions.get(cookieValue(req, SESSION_COOKIE) || '')
  const token = req.headers['x-csrf-token']
  if (!session || !session.token || tokenExpired(session) || token !== session.token) return null
  return session
}

// Checks a write body against PROPERTY_TYPES; returns the changes with
// V2 /Date()/ values converted, or throws QueryError naming the property.
function validateChanges (body, vin) {
  const changes = body && typeof body.d === 'object' ? body.d : body
  if (!changes || typeof changes !== 'object' || Array.isArray(changes)) {
    throw new QueryError('The request body must be a JSON object')
  }
  const result = {}
  for (const [name, raw] of Object.entries(changes)) {
    if (name === '__metadata' || name.startsWith('@')) continue
    const property = PROPERTY_TYPES[name]
    if (!property) throw new QueryError(`Property '${name}' is invalid`)
    if (name === 'VIN') {
      if (raw !== vin) throw new QueryError('Property VIN is the key and cannot be changed')
      continue
    }
    if (property.readOnly) throw new QueryError(`Property '${name}' is read-only`)
    result[name] = convertValue(name, property, raw)
  }
  return result
}

function convertValue (name, property, raw) {
  if (raw === null) return null
  switch (property.type) {
    case 'string':
      if (typeof raw !== 'string') throw new QueryError(`Property '${name}' expects a string`)
      if (raw.length > property.maxLength) throw new QueryError(`Value of '${name}' is longer than ${property.maxLength} characters`)
      if (property.codes && !property.codes.includes(raw)) {
        throw new QueryError(`Value '${raw}' of '${name}' is not defined in the code table (${property.codes.join(', ')})`)
      }
      return raw
    case 'integer':
      if (!Number.isInteger(raw)) throw new QueryError(`Property '${name}' expects an integer`)
      return raw
    case 'decimal':
      if (typeof raw === 'number' && Number.isFinite(raw)) return raw
      if (typeof raw === 'string' && /^-?[0-9]+(\.[0-9]+)?$/.test(raw)) return Number(raw)
      throw new QueryError(`Property '${name}' expects a decimal number`)
    case 'boolean':
      if (typeof raw !== 'boolean') throw new QueryError(`Property '${name}' expects true or false`)
      return raw
    case 'date': {
      const v2 = /^\/Date\((-?[0-9]+)\)\/$/.exec(raw)
      if (v2) return new Date(Number(v2[1])).toISOString().slice(0, 10)
      if (typeof raw === 'string' && /^[0-9]{4}-[0-9]{2}-[0-9]{2}(T00:00:00(\.0+)?Z?)?$/.test(raw)) return raw.slice(0, 10)
      throw new QueryError(`Property '${name}' expects a date (YYYY-MM-DD or /Date(ms)/)`)
    }
    default:
      throw new QueryError(`Property '${name}' cannot be written`)
  }
}

// The modifiedAt of a write: now, but always later than the previous value,
// so two writes within one millisecond still get different ETags.
function nextModifiedAt (previous) {
  return new Date(Math.max(Date.now(), Date.parse(previous) + 1)).toISOString()
}

function basicUser (req) {
  const match = /^Basic (.+)$/i.exec(req.headers.authorization || '')
  if (!match) return 'anonymous'
  return Buffer.from(match[1], 'base64').toString().split(':')[0] || 'anonymous'
}

// Retry-After of the writes that busy_writes rejects, in seconds.
const BUSY_RETRY_AFTER_SECONDS = 2

// Performs a write after these checks, in order: busy_writes, the CSRF
// token, the replay of a known Repeatability-Request-ID, the entity,
// rejected VINs, If-Match and the body. The replay comes before If-Match because a resent write
// carries the ETag it was first sent with, which the first write changed.
function handleGatewayWrite (ctx, plain403) {
  const { req, res, version, resource } = ctx
  const v2Error = (status, code, message, headers) => sendError(res, version, status, code, message, headers)
  if (resource.kind !== 'entity' || !WRITE_METHODS.includes(effectiveMethod(req))) {
    return v2Error(405, '405', `${effectiveMethod(req)} is not supported on this resource by the fault server`)
  }
  if (config.busy_writes > 0) {
    config = { ...config, busy_writes: config.busy_writes - 1 }
    return v2Error(config.busy_status, String(config.busy_status), 'The system is busy; try again later',
      { 'Retry-After': String(BUSY_RETRY_AFTER_SECONDS) })
  }
  if (plain403) {
    return v2Error(403, '/IWFND/CM_CONSUMER/102', 'User STK_SYNC has no authorization to change vehicles')
  }
  const session = validCsrfSession(req)
  if (!session) {
    res.writeHead(403, { 'x-csrf-token': 'Required', 'Content-Type': 'text/plain' })
    return res.end('CSRF token validation failed')
  }
  session.writesUsed++

  const repeatId = req.headers['repeatability-request-id']
  if (repeatId && repeatedWrites.has(repeatId)) {
    res.writeHead(204, { ETag: repeatedWrites.get(repeatId).etag, 'Repeatability-Result': 'accepted' })
    return res.end()
  }

  const vehicle = gatewayStore.get(resource.key)
  if (!vehicle) return v2Error(404, '/IWBEP/CM_MGW_RT/020', `Resource not found for segment 'Vehicles('${resource.key}')'`)
  if (config.reject_vins.includes(resource.key)) {
    return v2Error(400, 'ZSTK/042', `Vehicle ${resource.key} is locked by a billing document and cannot be changed`)
  }

  const ifMatch = req.headers['if-match']
  if (!ifMatch) return v2Error(428, '428', 'Precondition required: send If-Match with the ETag of the vehicle')
  if (ifMatch.trim() === '*') {
    return v2Error(428, '428', 'If-Match: * is not accepted; send the ETag of the vehicle')
  }
  if (ifMatch.trim() !== etagOf(vehicle)) return v2Error(412, '412', 'Precondition failed: the vehicle was changed by another user')

  let changes
  try {
    changes = validateChanges(JSON.parse(ctx.body.toString('utf8') || 'null'), resource.key)
  } catch (error) {
    if (error instanceof SyntaxError) return v2Error(400, '/IWBEP/CM_MGW_RT/004', `Malformed JSON in the request body: ${error.message}`)
    if (error instanceof QueryError) return v2Error(400, 'ZSTK/010', error.message)
    throw error
  }
  Object.assign(vehicle, changes)
  vehicle.modifiedAt = nextModifiedAt(vehicle.modifiedAt)
  vehicle.modifiedBy = basicUser(req)
  const etag = etagOf(vehicle)
  const headers = { ETag: etag }
  if (repeatId) {
    repeatedWrites.set(repeatId, { etag })
    headers['Repeatability-Result'] = 'accepted'
  }
  res.writeHead(204, headers)
  res.end()
}

// /gateway and /gateway403: reads from the writable copy, CSRF tokens on
// GET and HEAD with X-CSRF-Token: Fetch, and checked writes.
function handleGateway (ctx, plain403) {
  const { req, res } = ctx
  if (req.method === 'GET' || req.method === 'HEAD') {
    if ((req.headers['x-csrf-token'] || '').toLowerCase() === 'fetch') issueCsrfToken(req, res)
    return serveRead(ctx, [...gatewayStore.values()])
  }
  handleGatewayWrite(ctx, plain403)
}

// /sink: accepts every write at once (after ?delay_ms=N), for throughput
// benchmarks. Its requests are counted but logged only with record_sink.
function handleSink (ctx) {
  const { req, res } = ctx
  if (req.method === 'GET' || req.method === 'HEAD') {
    if ((req.headers['x-csrf-token'] || '').toLowerCase() === 'fetch') {
      res.setHeader('x-csrf-token', 'sink-token')
      res.setHeader('Set-Cookie', `${SESSION_COOKIE}=sink; path=/; HttpOnly`)
    }
    return serveRead(ctx, VEHICLES)
  }
  const delay = parseNonNegativeInteger('delay_ms', ctx.url.searchParams.get('delay_ms')) || 0
  const answer = () => {
    res.writeHead(204, { ETag: `W/"${new Date().toISOString()}"` })
    res.end()
  }
  if (delay > 0) sendLater(ctx, delay, answer)
  else answer()
}

// ---------------------------------------------------------------------------
// Configuration, request log and counters
// ---------------------------------------------------------------------------

const DEFAULT_CONFIG = Object.freeze({
  token_writes: 0, // writes per CSRF token; 0 means the token never expires
  reject_vins: [], // VINs whose writes get 400 with an SAP error body
  slow_ms: 30000, // delay of the slow scenario, in milliseconds
  oversized_bytes: 2 * 1024 * 1024, // body size of the oversized scenario
  record_sink: false, // whether /sink requests go to the request log
  busy_writes: 0, // next writes to /gateway and /gateway403 that get busy_status with Retry-After
  busy_status: 503, // status of those writes, such as 503 or 429
})
let config = { ...DEFAULT_CONFIG }

// Validates a POST /_config document; returns an error message or null.
function configProblem (changes) {
  if (!changes || typeof changes !== 'object' || Array.isArray(changes)) return 'expected a JSON object'
  for (const [key, value] of Object.entries(changes)) {
    if (!(key in DEFAULT_CONFIG)) return `unknown key "${key}"; known keys: ${Object.keys(DEFAULT_CONFIG).join(', ')}`
    const expected = DEFAULT_CONFIG[key]
    if (Array.isArray(expected)) {
      if (!Array.isArray(value) || !value.every((v) => typeof v === 'string')) return `"${key}" must be an array of strings`
    } else if (typeof expected === 'number') {
      if (!Number.isInteger(value) || value < 0) return `"${key}" must be a non-negative integer`
    } else if (typeof value !== typeof expected) {
      return `"${key}" must be a ${typeof expected}`
    }
  }
  return null
}

let requestLog = []
let requestSequence = 0
let counters = new Map()

function logRequest (ctx) {
  const { req } = ctx
  const entry = {
    seq: ++requestSequence,
    time: new Date().toISOString(),
    time_ms: Date.now(),
    scenario: ctx.scenario,
    count: ctx.count,
    method: req.method,
    url: req.url,
    headers: req.headers,
  }
  if (req.method !== 'GET' && req.method !== 'HEAD') {
    entry.body = ctx.body.toString('utf8')
    entry.repeatability_request_id = req.headers['repeatability-request-id'] ?? null
    entry.repeatability_first_sent = req.headers['repeatability-first-sent'] ?? null
  }
  requestLog.push(entry)
  if (requestLog.length > MAX_LOGGED_REQUESTS) requestLog.splice(0, requestLog.length - MAX_LOGGED_REQUESTS)
  return entry
}

function handleControl (req, res, url, body) {
  const route = `${req.method} ${url.pathname}`
  switch (route) {
    case 'GET /_health':
      return sendJson(res, 200, { status: 'ok', pid: process.pid })
    case 'POST /_reset':
      counters = new Map()
      config = { ...DEFAULT_CONFIG }
      resetGatewayState()
      console.log(`${new Date().toISOString()} reset: counters, configuration, vehicles and CSRF sessions`)
      return sendJson(res, 200, { reset: true })
    case 'GET /_config':
      return sendJson(res, 200, config)
    case 'POST /_config': {
      let changes
      try {
        changes = JSON.parse(body.toString('utf8'))
      } catch (error) {
        return sendJson(res, 400, { error: `invalid JSON: ${error.message}` })
      }
      const problem = configProblem(changes)
      if (problem) return sendJson(res, 400, { error: `invalid configuration: ${problem}` })
      config = { ...config, ...changes }
      console.log(`${new Date().toISOString()} configuration: ${JSON.stringify(config)}`)
      return sendJson(res, 200, config)
    }
    case 'GET /_requests': {
      const scenario = url.searchParams.get('scenario')
      return sendJson(res, 200, scenario ? requestLog.filter((e) => e.scenario === scenario) : requestLog)
    }
    case 'DELETE /_requests':
      requestLog = []
      return sendJson(res, 200, { cleared: true })
    case 'GET /_counters':
      return sendJson(res, 200, Object.fromEntries(counters))
    default:
      return sendJson(res, 404, { error: `unknown control endpoint ${route}` })
  }
}

// ---------------------------------------------------------------------------
// Routing
// ---------------------------------------------------------------------------

const SERVICE_PATH = /^\/([A-Za-z0-9_]+)\/odata\/(v4|v2)\/vehicle\/(.*)$/

// Splits the path after the service root into the resource it names.
function parseResource (rest) {
  const decoded = decodeURIComponent(rest)
  if (decoded === '') return { kind: 'service' }
  if (decoded === '$metadata') return { kind: 'metadata' }
  if (decoded === 'Vehicles') return { kind: 'collection' }
  if (decoded === 'Vehicles/$count') return { kind: 'count' }
  const entity = /^Vehicles\('((?:[^']|'')*)'\)$/.exec(decoded)
  if (entity) return { kind: 'entity', key: entity[1].replace(/''/g, "'") }
  return null
}

// Dispatches one request to its scenario. ctx carries: req, res, url,
// scenario, count (this request's number within its scenario), version
// ('v4' or 'v2'), serviceUrl, resource, body (a Buffer) and logEntry.
function handleScenario (req, res, url, body) {
  const match = SERVICE_PATH.exec(url.pathname)
  const scenario = match ? match[1] : url.pathname.split('/')[1]
  const count = (counters.get(scenario) || 0) + 1
  counters.set(scenario, count)
  const ctx = { req, res, url, scenario, count, body }
  const recorded = scenario !== 'sink' || config.record_sink
  ctx.logEntry = recorded ? logRequest(ctx) : {}
  if (recorded) logOutcome(ctx)

  if (!match) return sendJson(res, 404, errorBody('v4', '404', `No service at ${url.pathname}; expected /<scenario>/odata/v4/vehicle/ or /<scenario>/odata/v2/vehicle/`))
  ctx.version = match[2]
  ctx.serviceUrl = `http://${req.headers.host}/${scenario}/odata/${ctx.version}/vehicle/`
  ctx.resource = parseResource(match[3])
  if (!ctx.resource) return sendError(res, ctx.version, 404, '404', `Resource not found: ${match[3]}`)

  if (scenario === 'gateway' || scenario === 'gateway403') return handleGateway(ctx, scenario === 'gateway403')
  if (scenario === 'sink') return handleSink(ctx)
  const handler = READ_SCENARIOS[scenario]
  if (!handler) {
    const known = [...Object.keys(READ_SCENARIOS), 'gateway', 'gateway403', 'sink'].join(', ')
    return sendError(res, ctx.version, 404, '404', `Unknown scenario "${scenario}"; known scenarios: ${known}`)
  }
  if (req.method !== 'GET' && req.method !== 'HEAD') {
    return sendError(res, ctx.version, 405, '405', `Scenario "${scenario}" serves reads only; write to /gateway`)
  }
  handler(ctx)
}

// Sends the response for an exception of a handler: 400 with an OData error
// for a query the server cannot evaluate, else 500 (or a closed connection
// once the headers are out) and a log line with the stack.
function sendHandlerError (req, res, version, error) {
  if (error instanceof QueryError && !res.headersSent) {
    return sendError(res, version || 'v4', 400, '400', error.message)
  }
  console.error(`${new Date().toISOString()} error in ${req.method} ${req.url}: ${error.stack}`)
  if (!res.headersSent) sendJson(res, 500, { error: `fault server error: ${error.message}` })
  else res.destroy()
}

// Logs one line per request when its response ends or its connection closes.
function logOutcome (ctx) {
  const started = Date.now()
  ctx.res.on('close', () => {
    const entry = ctx.logEntry
    if (!entry.outcome) entry.outcome = ctx.res.writableFinished ? 'sent' : 'client closed'
    entry.status = ctx.res.statusCode
    console.log(`${new Date().toISOString()} ${ctx.scenario} #${ctx.count} ${ctx.req.method} ${ctx.req.url}` +
      ` -> ${entry.status} ${entry.outcome} (${Date.now() - started} ms)`)
  })
}

// Reads the request body, up to MAX_REQUEST_BODY_BYTES.
function readBody (req, done) {
  const chunks = []
  let size = 0
  let tooLarge = false
  req.on('data', (chunk) => {
    size += chunk.length
    if (size > MAX_REQUEST_BODY_BYTES) tooLarge = true
    else chunks.push(chunk)
  })
  req.on('end', () => done(tooLarge ? null : Buffer.concat(chunks)))
}

function handleRequest (req, res) {
  readBody(req, (body) => {
    const url = new URL(req.url, `http://${HOST}`)
    if (body === null) return sendJson(res, 413, { error: `request body larger than ${MAX_REQUEST_BODY_BYTES} bytes` })
    try {
      if (url.pathname.startsWith('/_')) return handleControl(req, res, url, body)
      handleScenario(req, res, url, body)
    } catch (error) {
      const match = SERVICE_PATH.exec(url.pathname)
      sendHandlerError(req, res, match ? match[2] : 'v4', error)
    }
  })
}

function main () {
  const portText = process.argv[2] || process.env.FAULT_PORT || String(DEFAULT_PORT)
  const port = Number(portText)
  if (!/^[0-9]+$/.test(portText) || port < 1 || port > 65535) {
    console.error(`fault-server.js: invalid port '${portText}': expected a number from 1 to 65535`)
    process.exit(2)
  }
  resetGatewayState()
  const server = http.createServer(handleRequest)
  // Node.js rejects unknown methods before they reach the handler; MERGE is
  // among the methods its parser accepts.
  server.on('error', (error) => {
    console.error(`fault-server.js: cannot listen on ${HOST}:${port}: ${error.message}`)
    process.exit(1)
  })
  server.listen(port, HOST, () => {
    console.log(`fault server listening on http://${HOST}:${port} (pid ${process.pid})`)
  })
  const stop = (signal) => {
    console.log(`fault server stopping on ${signal}`)
    server.close(() => process.exit(0))
    server.closeAllConnections()
  }
  process.on('SIGTERM', () => stop('SIGTERM'))
  process.on('SIGINT', () => stop('SIGINT'))
}

main()

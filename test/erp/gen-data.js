#!/usr/bin/env node
// Generates db/data/erp-Vehicles.csv, the seed data that CAP loads into the
// test ERP at every start. The output depends only on the constants in this
// script, so running it again reproduces the committed file byte for byte.
//
// Usage: node gen-data.js [output.csv]

'use strict'

const fs = require('node:fs')
const path = require('node:path')

const SEED = 20250106
const VEHICLE_COUNT = 3000
// Vehicles that share one modifiedAt. With any ERP_PAGE_SIZE below this the
// tie spans a page boundary, so a (modifiedAt, VIN) watermark must carry it.
const LARGE_TIE_SIZE = 250
const FIRST_MODIFIED_AT = Date.parse('2025-01-06T06:00:00.000Z')

const OUTPUT = process.argv[2] || path.join(__dirname, 'db', 'data', 'erp-Vehicles.csv')

// mulberry32: a small 32-bit PRNG, enough for reproducible test data.
function createRandom(seed) {
  let state = seed >>> 0
  return function random() {
    state = (state + 0x6d2b79f5) >>> 0
    let t = state
    t = Math.imul(t ^ (t >>> 15), t | 1)
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61)
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296
  }
}

const random = createRandom(SEED)

function randomInt(min, max) {
  return min + Math.floor(random() * (max - min + 1))
}

function pick(items) {
  return items[Math.floor(random() * items.length)]
}

// Picks a key of `weights`, an object of key -> relative weight.
function pickWeighted(weights) {
  const entries = Object.entries(weights)
  const total = entries.reduce((sum, [, weight]) => sum + weight, 0)
  let remaining = random() * total
  for (const [key, weight] of entries) {
    remaining -= weight
    if (remaining < 0) return key
  }
  return entries[entries.length - 1][0]
}

// VIN check digit (position 9) as defined by 49 CFR 565.
const TRANSLITERATION = {
  A: 1, B: 2, C: 3, D: 4, E: 5, F: 6, G: 7, H: 8,
  J: 1, K: 2, L: 3, M: 4, N: 5, P: 7, R: 9,
  S: 2, T: 3, U: 4, V: 5, W: 6, X: 7, Y: 8, Z: 9,
}
const WEIGHTS = [8, 7, 6, 5, 4, 3, 2, 10, 0, 9, 8, 7, 6, 5, 4, 3, 2]

function vinCheckDigit(vin) {
  let sum = 0
  for (let i = 0; i < 17; i++) {
    const c = vin[i]
    const value = c >= '0' && c <= '9' ? Number(c) : TRANSLITERATION[c]
    if (value === undefined) throw new Error(`invalid VIN character '${c}' in ${vin}`)
    sum += value * WEIGHTS[i]
  }
  const remainder = sum % 11
  return remainder === 10 ? 'X' : String(remainder)
}

// Checks vinCheckDigit against two VINs whose check digits are known.
for (const [vin, expected] of [['1M8GDM9AXKP042788', 'X'], ['11111111111111111', '1']]) {
  const actual = vinCheckDigit(vin)
  if (actual !== expected) throw new Error(`vinCheckDigit returned ${actual} for ${vin}, expected ${expected}`)
}

// Model year code (position 10) for the years generated here.
const YEAR_CODES = { 2022: 'N', 2023: 'P', 2024: 'R', 2025: 'S', 2026: 'T' }

// A model as the ERP lists it. `vds` fills VIN positions 4-8. `checkDigit`
// is a fixed character for makes that put a filler in position 9 instead of
// a check digit (Volkswagen's European VINs carry 'Z'), else undefined.
const NORTH_AMERICA = [
  { wmi: '1FA', plant: 'F', model: 'MUSTANG', vds: '6P8TH', trims: ['ECOB', 'GT', 'DARKH'], price: 36000, engine: 'EB23' },
  { wmi: '1FT', plant: 'K', model: 'F150', vds: 'FW1E5', trims: ['XL', 'XLT', 'LARIAT'], price: 42000, engine: 'V635' },
  { wmi: '1G1', plant: 'F', model: 'MALIBU', vds: 'ZD5ST', trims: ['LS', 'RS', '2LT'], price: 26000, engine: 'LSD15' },
  { wmi: '4T1', plant: 'U', model: 'CAMRY', vds: 'B11HK', trims: ['LE', 'SE', 'XSE'], price: 28500, engine: 'A25A' },
  { wmi: '2T1', plant: 'C', model: 'COROLLA', vds: 'BURHE', trims: ['L', 'LE', 'SE'], price: 22500, engine: 'M20A' },
  { wmi: '5YJ', plant: 'F', model: 'MODEL3', vds: '3E1EA', trims: ['RWD', 'LR', 'PERF'], price: 40000, engine: '3D3' },
  { wmi: '3VW', plant: 'M', model: 'JETTA', vds: 'C57BU', trims: ['S', 'SE', 'GLI'], price: 23000, engine: 'DGXA' },
]
const EUROPE = [
  { wmi: 'WVW', plant: 'W', model: 'GOLF8', vds: 'ZZZCD', checkDigit: 'Z', trims: ['LIFE', 'STYLE', 'GTI'], price: 31000, engine: 'DLAA' },
  { wmi: 'WVW', plant: 'W', model: 'ID4', vds: 'ZZZE2', checkDigit: 'Z', trims: ['PURE', 'PRO', 'GTX'], price: 43000, engine: 'EBJA' },
  { wmi: 'WVG', plant: 'W', model: 'TIGUAN', vds: 'ZZZCT', checkDigit: 'Z', trims: ['LIFE', 'ELEG', 'RLINE'], price: 38000, engine: 'DPLA' },
  { wmi: 'WBA', plant: 'A', model: '320I', vds: '5R110', trims: ['ADV', 'MSPORT', 'LUX'], price: 45000, engine: 'B48B20' },
  { wmi: 'WDD', plant: 'F', model: 'C200', vds: '20604', trims: ['AVANT', 'AMGL', 'EXCL'], price: 48000, engine: 'M254' },
  { wmi: 'WAU', plant: 'N', model: 'A4', vds: 'ZZZF4', trims: ['BASE', 'ADV', 'SLINE'], price: 44000, engine: 'DTPA' },
  { wmi: 'TMB', plant: 'M', model: 'OCTAVIA', vds: 'JG7NX', trims: ['AMB', 'STYLE', 'RS'], price: 29000, engine: 'DNFA' },
  { wmi: 'VF1', plant: 'B', model: 'CLIO', vds: 'RJA00', trims: ['EVOL', 'TECHNO', 'ESPRIT'], price: 21000, engine: 'H4D' },
  { wmi: 'ZFA', plant: 'T', model: 'PANDA', vds: '31200', trims: ['POP', 'CITY', 'CROSS'], price: 16000, engine: '46341' },
  { wmi: 'YV1', plant: 'G', model: 'XC60', vds: 'UZA8V', trims: ['CORE', 'PLUS', 'ULTRA'], price: 52000, engine: 'B4204' },
]
const BRAZIL = [
  { wmi: '9BW', plant: 'P', model: 'POLO', vds: 'AH5AW', trims: ['TRACK', 'HIGHL', 'GTS'], price: 95000, engine: 'CWSA' },
]

// SAP-style customer numbers with leading zeros. Names carry accents, an
// apostrophe (OData string literals escape it as '') and a comma (the CSV
// quotes it). `rate` converts a price in EUR to the dealer's currency.
const DEALERS = {
  northAmerica: [
    { code: '0000100101', name: 'Detroit Motor Sales Inc.', currency: 'USD', rate: 1.08 },
    { code: '0000100102', name: 'Québec Automobiles Inc.', currency: 'CAD', rate: 1.47 },
    { code: '0000100103', name: 'Autos Querétaro S.A. de C.V.', currency: 'MXN', rate: 18.5 },
  ],
  europe: [
    { code: '0000100201', name: 'Autohaus Münster GmbH', currency: 'EUR', rate: 1 },
    { code: '0000100202', name: 'Škoda Brno s.r.o.', currency: 'CZK', rate: 25.2 },
    { code: '0000100203', name: 'Garage Zürich AG', currency: 'CHF', rate: 0.94 },
    { code: '0000100204', name: "Garage de l'Étoile Besançon", currency: 'EUR', rate: 1 },
    { code: '0000100205', name: 'Automóviles Málaga S.L.', currency: 'EUR', rate: 1 },
    { code: '0000100206', name: 'Łódź Motors Sp. z o.o.', currency: 'PLN', rate: 4.3 },
    { code: '0000100207', name: 'Bilhus Tromsø AS', currency: 'NOK', rate: 11.6 },
    { code: '0000100208', name: 'Müller & Söhne, Köln', currency: 'EUR', rate: 1 },
  ],
  brazil: [
    { code: '0000100301', name: 'Auto São Paulo Ltda.', currency: 'BRL', rate: 1 },
  ],
}

const COLOR_CODES = ['2T2T', '0Q0Q', 'LC9A', 'K1K1', 'P0P0', 'A96', '475', '300', 'UA', 'B4B4']
const TRANSIT_CAPABLE = new Set(['A0', 'R1', 'S2'])

// Sales status -> relative weight, and the financial statuses each allows.
const SALES_STATUS_WEIGHTS = { A0: 45, R1: 10, S2: 12, I3: 8, D4: 15, RT: 3, BL: 7 }
const FIN_STATUS_BY_SALES_STATUS = {
  A0: { FP: 60, UP: 25, CS: 15 },
  R1: { FP: 70, UP: 30 },
  S2: { FI: 50, FP: 35, UP: 15 },
  I3: { FI: 60, PD: 40 },
  D4: { PD: 70, RL: 30 },
  RT: { RL: 60, UP: 40 },
  BL: { UP: 30, FP: 40, CS: 30 },
}

const serialByWmi = {}

function nextSerial(wmi) {
  serialByWmi[wmi] = (serialByWmi[wmi] ?? randomInt(100000, 400000)) + randomInt(1, 40)
  return String(serialByWmi[wmi]).padStart(6, '0')
}

function buildVin(model, modelYear) {
  const body = model.wmi + model.vds + '0' + YEAR_CODES[modelYear] + model.plant + nextSerial(model.wmi)
  const checkDigit = model.checkDigit ?? vinCheckDigit(body)
  return body.slice(0, 8) + checkDigit + body.slice(9)
}

function formatPrice(eurPrice, rate) {
  const cents = Math.round(eurPrice * rate * 100 / 10) * 10 + pick([0, 0, 0, 90, 50, 0, 9])
  return (cents / 100).toFixed(2)
}

function formatDate(ms) {
  return new Date(ms).toISOString().slice(0, 10)
}

function createVehicle() {
  const region = pickWeighted({ northAmerica: 35, europe: 58, brazil: 7 })
  const model = pick({ northAmerica: NORTH_AMERICA, europe: EUROPE, brazil: BRAZIL }[region])
  const dealer = pick(DEALERS[region])
  const modelYear = Number(pickWeighted({ 2023: 10, 2024: 35, 2025: 45, 2026: 10 }))
  const trimIndex = randomInt(0, model.trims.length - 1)
  const salesStatus = pickWeighted(SALES_STATUS_WEIGHTS)
  const inTransit = TRANSIT_CAPABLE.has(salesStatus) && random() < 0.08
  const hasOrder = !['A0', 'BL'].includes(salesStatus)

  let mileage = randomInt(0, 60)
  if (inTransit) mileage = randomInt(0, 8)
  else if (salesStatus === 'D4') mileage = randomInt(5, 250)
  else if (salesStatus === 'RT') mileage = randomInt(800, 15000)

  let pdiStatus = pickWeighted({ P0: 45, P1: 15, P2: 35, P9: 5 })
  if (inTransit) pdiStatus = 'P0'
  else if (['I3', 'D4'].includes(salesStatus)) pdiStatus = 'P2'

  return {
    VIN: buildVin(model, modelYear),
    Model: model.model,
    ModelYear: String(modelYear),
    Trim: model.trims[trimIndex],
    ColorCode: pick(COLOR_CODES),
    EngineNo: `${model.engine}-${String(randomInt(0, 999999)).padStart(6, '0')}`,
    Dealer: dealer.code,
    DealerName: dealer.name,
    SalesStatus: salesStatus,
    FinStatus: pickWeighted(FIN_STATUS_BY_SALES_STATUS[salesStatus]),
    ListPrice: formatPrice(model.price * (1 + 0.15 * trimIndex), region === 'brazil' ? 1 : dealer.rate),
    Currency: dealer.currency,
    SalesOrder: hasOrder ? String(randomInt(10000000, 19999999)).padStart(10, '0') : '',
    Customer: hasOrder ? String(randomInt(300000, 399999)).padStart(10, '0') : '',
    StorageBin: inTransit ? '' : `Y${randomInt(1, 4)}-${pick('ABCDEFGH')}-${String(randomInt(1, 60)).padStart(3, '0')}`,
    MaintStatus: inTransit ? '0' : pickWeighted({ 0: 70, 1: 12, 2: 8, 3: 10 }),
    PdiStatus: pdiStatus,
    InTransit: String(inTransit),
    ArrivalDate: inTransit ? '' : formatDate(Date.parse('2024-06-01') + randomInt(0, 210) * 86400000),
    Mileage: String(mileage),
  }
}

// Assigns createdAt/modifiedAt in groups that share one timestamp. Most
// groups are small, some are batch-sized, one has LARGE_TIE_SIZE rows, and
// some steps between groups are a single millisecond.
function assignTimestamps(vehicles) {
  const order = vehicles.map((_, i) => i)
  for (let i = order.length - 1; i > 0; i--) {
    const j = randomInt(0, i)
    ;[order[i], order[j]] = [order[j], order[i]]
  }

  const largeTieStart = Math.floor(order.length / 2)
  let time = FIRST_MODIFIED_AT
  let position = 0
  while (position < order.length) {
    let groupSize = random() < 0.85 ? randomInt(1, 12) : randomInt(20, 60)
    if (position <= largeTieStart && largeTieStart < position + groupSize) {
      groupSize = LARGE_TIE_SIZE
    }
    const modifiedAt = new Date(time).toISOString()
    for (const index of order.slice(position, position + groupSize)) {
      const vehicle = vehicles[index]
      vehicle.modifiedAt = modifiedAt
      vehicle.createdAt = new Date(time - randomInt(0, 30 * 86400) * 1000).toISOString()
      vehicle.createdBy = 'ERP_LOAD'
      vehicle.modifiedBy = pick(['ERP_LOAD', 'SD_BATCH', 'JMUELLER', 'APEREIRA'])
    }
    position += groupSize
    time += random() < 0.1 ? randomInt(1, 9) : randomInt(1, 7200) * 1000
  }
}

const COLUMNS = [
  'VIN', 'Model', 'ModelYear', 'Trim', 'ColorCode', 'EngineNo', 'Dealer', 'DealerName',
  'SalesStatus', 'FinStatus', 'ListPrice', 'Currency', 'SalesOrder', 'Customer', 'StorageBin',
  'MaintStatus', 'PdiStatus', 'InTransit', 'ArrivalDate', 'Mileage',
  'createdAt', 'createdBy', 'modifiedAt', 'modifiedBy',
]

function csvField(value) {
  return /[",\n]/.test(value) ? `"${value.replace(/"/g, '""')}"` : value
}

function main() {
  const vehicles = Array.from({ length: VEHICLE_COUNT }, createVehicle)
  const vins = new Set(vehicles.map((v) => v.VIN))
  if (vins.size !== vehicles.length) throw new Error('generated VINs are not unique')
  for (const { VIN } of vehicles) {
    if (!/^[0-9A-HJ-NPR-Z]{17}$/.test(VIN)) throw new Error(`invalid VIN ${VIN}`)
    if ('12345'.includes(VIN[0]) && VIN[8] !== vinCheckDigit(VIN)) {
      throw new Error(`invalid check digit in North American VIN ${VIN}: expected ${vinCheckDigit(VIN)}`)
    }
  }

  assignTimestamps(vehicles)
  vehicles.sort((a, b) => (a.VIN < b.VIN ? -1 : 1))

  const lines = [COLUMNS.join(',')]
  for (const vehicle of vehicles) lines.push(COLUMNS.map((c) => csvField(vehicle[c])).join(','))
  fs.writeFileSync(OUTPUT, lines.join('\n') + '\n')

  const unverified = vehicles.filter((v) => v.VIN[8] !== vinCheckDigit(v.VIN)).length
  console.log(`wrote ${vehicles.length} vehicles to ${OUTPUT}, ${unverified} with a non-matching position 9`)
}

main()

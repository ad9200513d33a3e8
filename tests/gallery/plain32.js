#!/usr/bin/env node
// plain.js with every array a Float32Array, as someone writes a float32 net in JavaScript: each
// matrix is an array of Float32Array rows, so every value stored (inputs, parameters, Z, A, dZ,
// the gradients) is rounded to float32; the arithmetic between stores is JavaScript's doubles.
// The formulas are plain.js's, no stability tricks. The describe reply declares
// "precision": "float32". Speaks chainrule's JSON-lines protocol (docs/contract.md, "Plugging in"):
//
//     chainrule check --cmd "node tests/gallery/plain32.js"
//     chainrule check --cmd "node tests/gallery/plain32.js --bug"   # dL/dZ of the output without sigma'
//
// gelu is z * Phi(z), Phi(z) = (1 + erf(z / sqrt 2)) / 2; JavaScript has no erf, so erfc is ported
// from fdlibm (below) and erf(x) = 1 - erfc(x).
"use strict";

const readline = require("readline");

const BUG = process.argv.includes("--bug"); // the injected bug: the output layer's sigma' left out

// ---- erfc, ported from fdlibm's s_erf.c -------------------------------------------------------
// ====================================================
// Copyright (C) 1993 by Sun Microsystems, Inc. All rights reserved.
//
// Developed at SunSoft, a Sun Microsystems, Inc. business.
// Permission to use, copy, modify, and distribute this
// software is freely granted, provided that this notice
// is preserved.
// ====================================================
const erx = 8.45062911510467529297e-01;
// erf on [0, 0.84375]
const pp0 = 1.28379167095512558561e-01, pp1 = -3.25042107247001499370e-01, pp2 = -2.84817495755985104766e-02,
  pp3 = -5.77027029648944159157e-03, pp4 = -2.37630166566501626084e-05;
const qq1 = 3.97917223959155352819e-01, qq2 = 6.50222499887672944485e-02, qq3 = 5.08130628187576562776e-03,
  qq4 = 1.32494738004321644526e-04, qq5 = -3.96022827877536812320e-06;
// erf on [0.84375, 1.25]
const pa0 = -2.36211856075265944077e-03, pa1 = 4.14856118683748331666e-01, pa2 = -3.72207876035701323847e-01,
  pa3 = 3.18346619901161753674e-01, pa4 = -1.10894694282396677476e-01, pa5 = 3.54783043256182359371e-02,
  pa6 = -2.16637559486879084300e-03;
const qa1 = 1.06420880400844228286e-01, qa2 = 5.40397917702171048937e-01, qa3 = 7.18286544141962662868e-02,
  qa4 = 1.26171219808761642112e-01, qa5 = 1.36370839120290507362e-02, qa6 = 1.19844998467991074170e-02;
// erfc on [1.25, 1/0.35]
const ra0 = -9.86494403484714822705e-03, ra1 = -6.93858572707181764372e-01, ra2 = -1.05586262253232909814e+01,
  ra3 = -6.23753324503260060396e+01, ra4 = -1.62396669462573470355e+02, ra5 = -1.84605092906711035994e+02,
  ra6 = -8.12874355063065934246e+01, ra7 = -9.81432934416914548592e+00;
const sa1 = 1.96512716674392571292e+01, sa2 = 1.37657754143519042600e+02, sa3 = 4.34565877475229228821e+02,
  sa4 = 6.45387271733267880336e+02, sa5 = 4.29008140027567833386e+02, sa6 = 1.08635005541779435134e+02,
  sa7 = 6.57024977031928170135e+00, sa8 = -6.04244152148580987438e-02;
// erfc on [1/0.35, 28]
const rb0 = -9.86494292470009928597e-03, rb1 = -7.99283237680523006574e-01, rb2 = -1.77579549177547519889e+01,
  rb3 = -1.60636384855821916062e+02, rb4 = -6.37566443368389627722e+02, rb5 = -1.02509513161107724954e+03,
  rb6 = -4.83519191608651397019e+02;
const sb1 = 3.03380607434824582924e+01, sb2 = 3.25792512996573918826e+02, sb3 = 1.53672958608443695994e+03,
  sb4 = 3.19985821950859553908e+03, sb5 = 2.55305040643316442583e+03, sb6 = 4.74528541206955367215e+02,
  sb7 = -2.24409524465858183362e+01;

const words = new DataView(new ArrayBuffer(8));

function lowWordCleared(x) {
  // x with the low 32 bits of its significand zeroed: z*z is then exact in exp(-z*z - 0.5625)
  words.setFloat64(0, x);
  words.setUint32(4, 0);
  return words.getFloat64(0);
}

function erfc(x) {
  if (Number.isNaN(x)) return NaN;
  const ax = Math.abs(x);
  if (ax < 0.84375) {
    if (ax < 2 ** -56) return 1 - x;
    const z = x * x;
    const r = pp0 + z * (pp1 + z * (pp2 + z * (pp3 + z * pp4)));
    const s = 1 + z * (qq1 + z * (qq2 + z * (qq3 + z * (qq4 + z * qq5))));
    const y = r / s;
    if (x < 0.25) return 1 - (x + x * y);
    return 0.5 - (x * y + (x - 0.5));
  }
  if (ax < 1.25) {
    const s = ax - 1;
    const P = pa0 + s * (pa1 + s * (pa2 + s * (pa3 + s * (pa4 + s * (pa5 + s * pa6)))));
    const Q = 1 + s * (qa1 + s * (qa2 + s * (qa3 + s * (qa4 + s * (qa5 + s * qa6)))));
    return x >= 0 ? 1 - erx - P / Q : 1 + (erx + P / Q);
  }
  if (ax < 28) {
    const s = 1 / (ax * ax);
    let R, S;
    if (ax < 1 / 0.35) {
      R = ra0 + s * (ra1 + s * (ra2 + s * (ra3 + s * (ra4 + s * (ra5 + s * (ra6 + s * ra7))))));
      S = 1 + s * (sa1 + s * (sa2 + s * (sa3 + s * (sa4 + s * (sa5 + s * (sa6 + s * (sa7 + s * sa8)))))));
    } else {
      if (x < -6) return 2;
      R = rb0 + s * (rb1 + s * (rb2 + s * (rb3 + s * (rb4 + s * (rb5 + s * rb6)))));
      S = 1 + s * (sb1 + s * (sb2 + s * (sb3 + s * (sb4 + s * (sb5 + s * (sb6 + s * sb7))))));
    }
    const z = lowWordCleared(ax);
    const r = Math.exp(-z * z - 0.5625) * Math.exp((z - ax) * (z + ax) + R / S);
    return x > 0 ? r / ax : 2 - r / ax;
  }
  return x > 0 ? 0 : 2;
}

const erf = (x) => 1 - erfc(x);

// ---- activations: [sigma, sigma'] per name; softmax goes through its Jacobian-vector product ----

const sigmoid = (z) => 1 / (1 + Math.exp(-z));
const Phi = (z) => 0.5 * (1 + erf(z / Math.SQRT2));
const phi = (z) => Math.exp(-0.5 * z * z) / Math.sqrt(2 * Math.PI);

const ACTIVATIONS = {
  identity: [(z) => z, () => 1],
  relu: [(z) => Math.max(z, 0), (z) => (z > 0 ? 1 : 0)], // relu'(0) = 0
  leaky_relu: [(z) => (z > 0 ? z : 0.01 * z), (z) => (z > 0 ? 1 : 0.01)],
  sigmoid: [sigmoid, (z) => sigmoid(z) * (1 - sigmoid(z))],
  tanh: [Math.tanh, (z) => 1 - Math.tanh(z) ** 2],
  softplus: [(z) => Math.log(1 + Math.exp(z)), sigmoid],
  elu: [(z) => (z > 0 ? z : Math.exp(z) - 1), (z) => (z > 0 ? 1 : Math.exp(z))],
  gelu: [(z) => z * Phi(z), (z) => Phi(z) + z * phi(z)],
  silu: [(z) => z * sigmoid(z), (z) => sigmoid(z) * (1 + z * (1 - sigmoid(z)))],
};

// ---- float32 matrices: arrays of Float32Array rows ------------------------------------------------

const matrix = (rows, cols, entry) => Array.from({ length: rows }, (_, k) => Float32Array.from({ length: cols }, (_, j) => entry(k, j)));
const fromJSON = (M) => M.map((row) => Float32Array.from(row));
const toJSON = (M) => M.map((row) => Array.from(row));

function softmax(z) {
  const m = Math.max(...z);
  const e = z.map((v) => Math.exp(v - m));
  const total = e.reduce((s, v) => s + v, 0);
  return e.map((v) => v / total);
}

function activate(name, Z) {
  if (name === "softmax") return Z.map(softmax);
  const sigma = ACTIVATIONS[name][0];
  return Z.map((row) => row.map(sigma));
}

function through(name, Z, A, dA) {
  // dZ = dA * sigma'(Z); for softmax, a * (dA - sum(dA * a)) per row
  if (name === "softmax") {
    return A.map((a, k) => {
      const dot = a.reduce((s, v, j) => s + v * dA[k][j], 0);
      return a.map((v, j) => v * (dA[k][j] - dot));
    });
  }
  const prime = ACTIVATIONS[name][1];
  return Z.map((row, k) => row.map((z, j) => dA[k][j] * prime(z)));
}

// ---- losses, from the output activation a: the value and dL/da -----------------------------------

const LOSSES = {
  mse: [(a, y) => (a - y) ** 2, (a, y, N) => (2 * (a - y)) / N],
  cross_entropy: [(a, y) => -y * Math.log(a), (a, y, N) => -y / (N * a)],
  binary_cross_entropy: [
    (a, y) => -(y * Math.log(a) + (1 - y) * Math.log(1 - a)),
    (a, y, N) => (a - y) / (N * a * (1 - a)),
  ],
};

// ---- the network: Z(l) = A(l-1) W(l)^T + b(l), then the chain rule backwards -------------------

function lossAndGradients({ activations, loss, params, X, Y }) {
  params = params.map(({ W, b }) => ({ W: fromJSON(W), b: Float32Array.from(b) }));
  X = fromJSON(X);
  Y = fromJSON(Y);
  const Zs = [];
  const As = [X];
  params.forEach(({ W, b }, l) => {
    const Z = matrix(As[l].length, W.length, (k, j) => W[j].reduce((s, v, i) => s + v * As[l][k][i], b[j]));
    Zs.push(Z);
    As.push(activate(activations[l], Z));
  });
  const L = params.length;
  const N = Y.length;
  const [value, derivative] = LOSSES[loss];
  const A = As[L];
  let total = 0;
  A.forEach((a, k) => a.forEach((v, j) => (total += value(v, Y[k][j]))));
  const dA = A.map((a, k) => a.map((v, j) => derivative(v, Y[k][j], N)));
  let dZ = BUG ? dA : through(activations[L - 1], Zs[L - 1], A, dA);
  const grads = new Array(L);
  for (let l = L - 1; l >= 0; l--) {
    const { W } = params[l];
    const Aprev = As[l];
    const dW = matrix(W.length, W[0].length, (j, i) => dZ.reduce((s, row, k) => s + row[j] * Aprev[k][i], 0)); // dZ^T A(l-1)
    const db = Float32Array.from(W, (_, j) => dZ.reduce((s, row) => s + row[j], 0)); // dZ^T 1
    grads[l] = { W: toJSON(dW), b: Array.from(db) };
    if (l > 0) {
      const dAprev = matrix(dZ.length, W[0].length, (k, i) => dZ[k].reduce((s, v, j) => s + v * W[j][i], 0)); // dZ W
      dZ = through(activations[l - 1], Zs[l - 1], As[l], dAprev); // dA(l-1) * sigma'(Z(l-1))
    }
  }
  return { loss: Math.fround(total / N), grads };
}

// ---- the protocol -----------------------------------------------------------------------------

function respond(request) {
  if (request.describe) return { name: BUG ? "plain32-js (bug: no sigma' at the output)" : "plain32-js", precision: "float32" };
  return lossAndGradients(request);
}

const lines = readline.createInterface({ input: process.stdin, terminal: false });
lines.on("line", (line) => {
  let response;
  try {
    response = respond(JSON.parse(line));
  } catch (error) {
    response = { error: String(error && error.message ? error.message : error) };
  }
  process.stdout.write(JSON.stringify(response) + "\n");
});

#!/usr/bin/env node
// Layers one at a time in plain JavaScript (no packages), as someone ports a course's layers:
// each layer computes y and then the gradient of <y, dy> for each of its differentiable inputs.
// Speaks chainrule's JSON-lines protocol for layers (docs/layers.md, "Plugging in"):
//
//     chainrule check --cmd "node tests/gallery/layers.js"
//
// Arrays arrive as nested lists; each is flattened into a Float64Array of its values in row-major
// order and its shape, so that softmax over any axis, the norms over any rank, the convolutions,
// the pools and attention are loops with index arithmetic on the flat values. Every layer of the
// contract, everything it allows. relu'(0) = 0, leaky_relu'(0) = 0.01; gelu is z * Phi(z) with
// erf from fdlibm (as in plain.js); max_pool2d sends a tied window's gradient to its first maximum.
"use strict";

const readline = require("readline");

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

// ---- arrays: nested lists <-> flat values and a shape ---------------------------------------------

const product = (dims) => dims.reduce((p, d) => p * d, 1);

function flatten(nested) {
  const shape = [];
  for (let a = nested; Array.isArray(a); a = a[0]) shape.push(a.length);
  const data = Float64Array.from(Array.isArray(nested) ? nested.flat(Infinity) : [nested], Number);
  return { data, shape };
}

function nest(data, shape) {
  if (shape.length === 0) return data[0];
  const [n, ...rest] = shape;
  const size = product(rest);
  return Array.from({ length: n }, (_, i) => nest(data.slice(i * size, (i + 1) * size), rest));
}

// The flat indices of each line along `axis`: for every outer and inner position, the n indices
// outer * n * inner + k * inner + i, k = 0 .. n - 1.
function lines(shape, axis) {
  const a = axis < 0 ? axis + shape.length : axis;
  const outer = product(shape.slice(0, a));
  const n = shape[a];
  const inner = product(shape.slice(a + 1));
  const result = [];
  for (let o = 0; o < outer; o++) {
    for (let i = 0; i < inner; i++) result.push(Array.from({ length: n }, (_, k) => o * n * inner + k * inner + i));
  }
  return result;
}

// Consecutive runs of `size` flat indices: the rows a layer or group norm normalizes.
function rows(total, size) {
  return Array.from({ length: total / size }, (_, r) => Array.from({ length: size }, (_, k) => r * size + k));
}

// ---- the elementwise layers: [f, f'] ------------------------------------------------------------

const sigmoid = (z) => (z >= 0 ? 1 / (1 + Math.exp(-z)) : Math.exp(z) / (1 + Math.exp(z)));
const Phi = (z) => 0.5 * (1 + erf(z / Math.SQRT2));
const phi = (z) => Math.exp(-0.5 * z * z) / Math.sqrt(2 * Math.PI);

const ELEMENTWISE = {
  identity: [(z) => z, () => 1],
  relu: [(z) => Math.max(z, 0), (z) => (z > 0 ? 1 : 0)],
  leaky_relu: [(z) => (z > 0 ? z : 0.01 * z), (z) => (z > 0 ? 1 : 0.01)],
  sigmoid: [sigmoid, (z) => sigmoid(z) * (1 - sigmoid(z))],
  tanh: [Math.tanh, (z) => 1 - Math.tanh(z) ** 2],
  softplus: [(z) => (z > 0 ? z + Math.log1p(Math.exp(-z)) : Math.log1p(Math.exp(z))), sigmoid],
  elu: [(z) => (z > 0 ? z : Math.expm1(z)), (z) => (z > 0 ? 1 : Math.exp(z))],
  gelu: [(z) => z * Phi(z), (z) => Phi(z) + z * phi(z)],
  silu: [(z) => z * sigmoid(z), (z) => sigmoid(z) * (1 + z * (1 - sigmoid(z)))],
};

function elementwise(name, { x }, dy) {
  const [f, fPrime] = ELEMENTWISE[name];
  return { y: x.data.map(f), grads: { x: x.data.map((z, i) => dy.data[i] * fPrime(z)) }, shape: x.shape };
}

// ---- the layers: each takes its config, its inputs {data, shape} and dy {data, shape} ------------
// and returns y and the gradients as flat values, with their shapes.

function linear(config, { x, weight, bias }, dy) {
  const [N, inputs] = x.shape;
  const outputs = weight.shape[0];
  const X = x.data, W = weight.data, dY = dy.data;
  const y = new Array(N * outputs).fill(0);
  const dx = new Array(N * inputs).fill(0);
  const dW = new Array(outputs * inputs).fill(0);
  const db = new Array(outputs).fill(0);
  for (let n = 0; n < N; n++) {
    for (let o = 0; o < outputs; o++) {
      let z = bias.data[o];
      for (let i = 0; i < inputs; i++) {
        z += X[n * inputs + i] * W[o * inputs + i];
        dx[n * inputs + i] += dY[n * outputs + o] * W[o * inputs + i]; // dx = dy W
        dW[o * inputs + i] += dY[n * outputs + o] * X[n * inputs + i]; // dW = dy^T x
      }
      y[n * outputs + o] = z;
      db[o] += dY[n * outputs + o]; // db = dy^T 1
    }
  }
  return { y, shape: [N, outputs], grads: { x: dx, weight: dW, bias: db } };
}

function softmax({ axis }, { x }, dy) {
  const y = new Array(x.data.length);
  const dx = new Array(x.data.length);
  for (const line of lines(x.shape, axis)) {
    const m = Math.max(...line.map((i) => x.data[i]));
    const e = line.map((i) => Math.exp(x.data[i] - m));
    const total = e.reduce((s, v) => s + v, 0);
    line.forEach((i, k) => (y[i] = e[k] / total));
    const dot = line.reduce((s, i) => s + dy.data[i] * y[i], 0);
    line.forEach((i) => (dx[i] = y[i] * (dy.data[i] - dot))); // s (dy - <dy, s>)
  }
  return { y, shape: x.shape, grads: { x: dx } };
}

function logSoftmax({ axis }, { x }, dy) {
  const y = new Array(x.data.length);
  const dx = new Array(x.data.length);
  for (const line of lines(x.shape, axis)) {
    const m = Math.max(...line.map((i) => x.data[i]));
    const logTotal = Math.log(line.reduce((s, i) => s + Math.exp(x.data[i] - m), 0));
    line.forEach((i) => (y[i] = x.data[i] - m - logTotal));
    const total = line.reduce((s, i) => s + dy.data[i], 0);
    line.forEach((i) => (dx[i] = dy.data[i] - Math.exp(y[i]) * total)); // dy - s sum(dy)
  }
  return { y, shape: x.shape, grads: { x: dx } };
}

// The course's norm over each set of flat indices: xhat = (x - mean) / sqrt(var + eps),
// y = weight * xhat + bias with `param(i)` the weight and bias index of element i, and
// dx = (1/N) inv_std (N dxhat - sum(dxhat) - xhat sum(dxhat xhat)), dxhat = dy * weight.
function normalize(sets, param, eps, { x, weight, bias }, dy) {
  const X = x.data, dY = dy.data, W = weight.data;
  const y = new Array(X.length);
  const dx = new Array(X.length);
  const dW = new Array(W.length).fill(0);
  const db = new Array(W.length).fill(0);
  for (const set of sets) {
    const N = set.length;
    const mean = set.reduce((s, i) => s + X[i], 0) / N;
    const variance = set.reduce((s, i) => s + (X[i] - mean) ** 2, 0) / N;
    const invStd = 1 / Math.sqrt(variance + eps);
    const xhat = set.map((i) => (X[i] - mean) * invStd);
    let sumDxhat = 0;
    let sumDxhatXhat = 0;
    set.forEach((i, k) => {
      const c = param(i);
      y[i] = W[c] * xhat[k] + bias.data[c];
      sumDxhat += dY[i] * W[c];
      sumDxhatXhat += dY[i] * W[c] * xhat[k];
      dW[c] += dY[i] * xhat[k];
      db[c] += dY[i];
    });
    set.forEach((i, k) => (dx[i] = (invStd / N) * (N * dY[i] * W[param(i)] - sumDxhat - xhat[k] * sumDxhatXhat)));
  }
  return { y, shape: x.shape, grads: { x: dx, weight: dW, bias: db } };
}

function layerNorm({ normalized_shape, eps }, inputs, dy) {
  const D = product(normalized_shape);
  return normalize(rows(inputs.x.data.length, D), (i) => i % D, eps, inputs, dy);
}

function batchNorm({ eps }, inputs, dy) {
  // x (N, C, *spatial): channel c holds n * C * S + c * S + s
  const [N, C, ...spatial] = inputs.x.shape;
  const S = product(spatial);
  const channels = Array.from({ length: C }, (_, c) => {
    const set = [];
    for (let n = 0; n < N; n++) for (let s = 0; s < S; s++) set.push(n * C * S + c * S + s);
    return set;
  });
  return normalize(channels, (i) => Math.floor(i / S) % C, eps, inputs, dy);
}

function groupNorm({ num_groups, eps }, inputs, dy) {
  // a group is C / num_groups consecutive channels of one sample: a row of C / G * S values
  const [, C, ...spatial] = inputs.x.shape;
  const S = product(spatial);
  return normalize(rows(inputs.x.data.length, (C / num_groups) * S), (i) => Math.floor(i / S) % C, eps, inputs, dy);
}

function embedding(config, { indices, weight }, dy) {
  const [V, D] = weight.shape;
  const y = [];
  const dW = new Array(V * D).fill(0);
  indices.data.forEach((v, p) => {
    for (let j = 0; j < D; j++) {
      y.push(weight.data[v * D + j]);
      dW[v * D + j] += dy.data[p * D + j]; // a row used twice gets both gradients
    }
  });
  return { y, shape: [...indices.shape, D], grads: { weight: dW } };
}

function dropout({ p }, { x, mask }, dy) {
  const scale = 1 / (1 - p);
  return {
    y: x.data.map((v, i) => v * mask.data[i] * scale),
    shape: x.shape,
    grads: { x: dy.data.map((g, i) => g * mask.data[i] * scale) },
  };
}

function mseLoss(config, { input, target }, dy) {
  const n = input.data.length;
  const diff = input.data.map((v, i) => v - target.data[i]);
  const dInput = diff.map((d) => (2 * d * dy.data[0]) / n);
  return {
    y: [diff.reduce((s, d) => s + d * d, 0) / n],
    shape: [],
    grads: { input: dInput, target: dInput.map((g) => -g) },
  };
}

function crossEntropy(config, { input, target }, dy) {
  // logits (N, C), class indices (N,): mean over N of -log softmax(input)[target]
  const [N, C] = input.shape;
  let loss = 0;
  const dInput = new Array(N * C);
  for (let n = 0; n < N; n++) {
    const row = input.data.slice(n * C, (n + 1) * C);
    const m = Math.max(...row);
    const logTotal = Math.log(row.reduce((s, v) => s + Math.exp(v - m), 0));
    loss -= row[target.data[n]] - m - logTotal;
    row.forEach((v, c) => {
      const p = Math.exp(v - m - logTotal);
      dInput[n * C + c] = ((p - (c === target.data[n] ? 1 : 0)) * dy.data[0]) / N;
    });
  }
  return { y: [loss / N], shape: [], grads: { input: dInput } };
}

// An int or one int per spatial axis: one int per axis.
const perAxis = (value, axes) => (Array.isArray(value) ? value.map(Number) : new Array(axes).fill(value));

// F.conv2d, direct: y[n, o, i, j] = bias[o] + sum over the channels c of o's group g, kh and kw of
// weight[o, c, kh, kw] * x[n, g Cg + c, i sh - ph + kh dh, j sw - pw + kw dw], zero outside x.
// Each product hands dy times the other factor to each factor: dx is scattered back through the
// same indices, dW gathered, and db = sum of dy over n, i, j.
function conv2d({ stride, padding, dilation, groups }, { x, weight, bias }, dy) {
  const [N, C, H, W] = x.shape;
  const [O, Cg, KH, KW] = weight.shape;
  const [sh, sw] = perAxis(stride, 2);
  const [ph, pw] = perAxis(padding, 2);
  const [dh, dw] = perAxis(dilation, 2);
  const OH = Math.floor((H + 2 * ph - dh * (KH - 1) - 1) / sh) + 1;
  const OW = Math.floor((W + 2 * pw - dw * (KW - 1) - 1) / sw) + 1;
  const outputsPerGroup = O / groups;
  const X = x.data, Wt = weight.data, dY = dy.data;
  const y = new Float64Array(N * O * OH * OW);
  const dx = new Float64Array(X.length);
  const dW = new Float64Array(Wt.length);
  const db = new Float64Array(O);
  for (let n = 0; n < N; n++) {
    for (let o = 0; o < O; o++) {
      const firstChannel = Math.floor(o / outputsPerGroup) * Cg;
      for (let i = 0; i < OH; i++) {
        for (let j = 0; j < OW; j++) {
          const out = ((n * O + o) * OH + i) * OW + j;
          const dyOut = dY[out];
          let z = bias.data[o];
          for (let c = 0; c < Cg; c++) {
            for (let kh = 0; kh < KH; kh++) {
              const r = i * sh - ph + kh * dh;
              if (r < 0 || r >= H) continue; // a row of zero padding
              for (let kw = 0; kw < KW; kw++) {
                const s = j * sw - pw + kw * dw;
                if (s < 0 || s >= W) continue;
                const xi = ((n * C + firstChannel + c) * H + r) * W + s;
                const wi = ((o * Cg + c) * KH + kh) * KW + kw;
                z += X[xi] * Wt[wi];
                dx[xi] += dyOut * Wt[wi]; // dx[input position] += dy * w
                dW[wi] += dyOut * X[xi]; // dW[tap] += dy * x
              }
            }
          }
          y[out] = z;
          db[o] += dyOut; // db = sum of dy
        }
      }
    }
  }
  return { y, shape: [N, O, OH, OW], grads: { x: dx, weight: dW, bias: db } };
}

// F.conv1d is conv2d over a height of 1: x (N, C, L) read as (N, C, 1, L), weight (O, Cg, K)
// as (O, Cg, 1, K), with stride, padding and dilation 1, 0 and 1 along the height.
function conv1d({ stride, padding, dilation, groups }, { x, weight, bias }, dy) {
  const unitHeight = ({ data, shape: [a, b, length] }) => ({ data, shape: [a, b, 1, length] });
  const config = {
    stride: [1, ...perAxis(stride, 1)],
    padding: [0, ...perAxis(padding, 1)],
    dilation: [1, ...perAxis(dilation, 1)],
    groups,
  };
  const { y, shape, grads } = conv2d(config, { x: unitHeight(x), weight: unitHeight(weight), bias }, dy);
  return { y, shape: [shape[0], shape[1], shape[3]], grads };
}

// The windows of a 2-d pool over x (N, C, H, W), ceil_mode false, dilation 1: for each output
// (n, c, i, j) in row-major order, the flat indices of x in rows i sh - ph .. + KH - 1 and
// columns j sw - pw .. + KW - 1, row-major; positions in the padding are left out.
function poolWindows({ kernel_size, stride, padding }, [N, C, H, W]) {
  const [KH, KW] = perAxis(kernel_size, 2);
  const [sh, sw] = perAxis(stride ?? kernel_size, 2);
  const [ph, pw] = perAxis(padding, 2);
  const OH = Math.floor((H + 2 * ph - KH) / sh) + 1;
  const OW = Math.floor((W + 2 * pw - KW) / sw) + 1;
  const windows = [];
  for (let plane = 0; plane < N * C; plane++) {
    for (let i = 0; i < OH; i++) {
      for (let j = 0; j < OW; j++) {
        const window = [];
        for (let r = i * sh - ph; r < i * sh - ph + KH; r++) {
          for (let s = j * sw - pw; s < j * sw - pw + KW; s++) {
            if (r >= 0 && r < H && s >= 0 && s < W) window.push((plane * H + r) * W + s);
          }
        }
        windows.push(window);
      }
    }
  }
  return { windows, area: KH * KW, shape: [N, C, OH, OW] };
}

// y = the window's maximum; its dy goes to the first maximum in row-major order (strict > while
// scanning), and overlapping windows add up in dx. Padding is -inf: it is never in a window.
function maxPool2d(config, { x }, dy) {
  const { windows, shape } = poolWindows(config, x.shape);
  const y = new Float64Array(windows.length);
  const dx = new Float64Array(x.data.length);
  windows.forEach((window, out) => {
    let best = window[0];
    for (const i of window) if (x.data[i] > x.data[best]) best = i;
    y[out] = x.data[best];
    dx[best] += dy.data[out];
  });
  return { y, shape, grads: { x: dx } };
}

// y = the window's sum over its divisor: the kernel's area (count_include_pad, padding zeros
// counted) or the number of real entries; each entry of the window gets dy / divisor.
function avgPool2d(config, { x }, dy) {
  const { windows, area, shape } = poolWindows(config, x.shape);
  const y = new Float64Array(windows.length);
  const dx = new Float64Array(x.data.length);
  windows.forEach((window, out) => {
    const divisor = config.count_include_pad ? area : window.length;
    let total = 0;
    for (const i of window) {
      total += x.data[i];
      dx[i] += dy.data[out] / divisor;
    }
    y[out] = total / divisor;
  });
  return { y, shape, grads: { x: dx } };
}

// F.scaled_dot_product_attention for each (n, h): S = q k^T scale, P = softmax of S over the keys
// query i may see (mask[i, j], and j <= i when causal), y = P v. Backward, by hand:
// dV = P^T dY, dP = dY V^T, dS = P * (dP - rowsum(dP * P)), dQ = dS K scale, dK = dS^T Q scale.
function attention({ causal, scale }, { q, k, v, mask }, dy) {
  const [N, Hd, Lq, E] = q.shape;
  const [, , Lk, Ev] = v.shape;
  const c = scale ?? 1 / Math.sqrt(E);
  const Q = q.data, K = k.data, V = v.data, dY = dy.data;
  const y = new Float64Array(N * Hd * Lq * Ev);
  const dq = new Float64Array(Q.length);
  const dk = new Float64Array(K.length);
  const dv = new Float64Array(V.length);
  const P = new Float64Array(Lk);
  const dP = new Float64Array(Lk);
  for (let head = 0; head < N * Hd; head++) {
    const q0 = head * Lq * E, k0 = head * Lk * E, v0 = head * Lk * Ev, y0 = head * Lq * Ev;
    for (let i = 0; i < Lq; i++) {
      // P[j] = softmax over the keys i sees of S[i, j]; the others get 0
      const sees = (j) => (!mask || mask.data[i * Lk + j] === 1) && (!causal || j <= i);
      let m = -Infinity;
      for (let j = 0; j < Lk; j++) {
        P[j] = -Infinity;
        if (!sees(j)) continue;
        let s = 0;
        for (let e = 0; e < E; e++) s += Q[q0 + i * E + e] * K[k0 + j * E + e];
        P[j] = s * c;
        m = Math.max(m, P[j]);
      }
      let total = 0;
      for (let j = 0; j < Lk; j++) total += P[j] = sees(j) ? Math.exp(P[j] - m) : 0;
      for (let j = 0; j < Lk; j++) P[j] /= total;
      // y[i] = sum_j P[j] v[j]; dV[j] += P[j] dY[i]; dP[j] = dY[i] . v[j]
      let dot = 0; // rowsum(dP * P)
      for (let j = 0; j < Lk; j++) {
        dP[j] = 0;
        for (let e = 0; e < Ev; e++) {
          y[y0 + i * Ev + e] += P[j] * V[v0 + j * Ev + e];
          dv[v0 + j * Ev + e] += P[j] * dY[y0 + i * Ev + e];
          dP[j] += dY[y0 + i * Ev + e] * V[v0 + j * Ev + e];
        }
        dot += dP[j] * P[j];
      }
      // dS[j] = P[j] (dP[j] - dot); dQ[i] += dS[j] k[j] scale; dK[j] += dS[j] q[i] scale
      for (let j = 0; j < Lk; j++) {
        const dS = P[j] * (dP[j] - dot);
        for (let e = 0; e < E; e++) {
          dq[q0 + i * E + e] += dS * K[k0 + j * E + e] * c;
          dk[k0 + j * E + e] += dS * Q[q0 + i * E + e] * c;
        }
      }
    }
  }
  return { y, shape: [N, Hd, Lq, Ev], grads: { q: dq, k: dk, v: dv } };
}

const LAYERS = {
  linear,
  ...Object.fromEntries(Object.keys(ELEMENTWISE).map((name) => [name, (config, inputs, dy) => elementwise(name, inputs, dy)])),
  softmax,
  log_softmax: logSoftmax,
  layer_norm: layerNorm,
  batch_norm: batchNorm,
  group_norm: groupNorm,
  embedding,
  dropout,
  conv1d,
  conv2d,
  max_pool2d: maxPool2d,
  avg_pool2d: avgPool2d,
  attention,
  mse_loss: mseLoss,
  cross_entropy: crossEntropy,
};

// ---- the protocol -----------------------------------------------------------------------------

function respond(request) {
  if (request.describe) return { name: "plain_js_layers", layers: Object.keys(LAYERS) };
  const layer = LAYERS[request.layer];
  if (!layer) throw new Error(`unknown layer ${request.layer}`);
  const inputs = Object.fromEntries(Object.entries(request.inputs).map(([name, value]) => [name, flatten(value)]));
  const { y, shape, grads } = layer(request.config, inputs, flatten(request.dy));
  return {
    y: nest(y, shape),
    grads: Object.fromEntries(Object.entries(grads).map(([name, g]) => [name, nest(g, inputs[name].shape)])),
  };
}

const input = readline.createInterface({ input: process.stdin, terminal: false });
input.on("line", (line) => {
  let response;
  try {
    response = respond(JSON.parse(line));
  } catch (error) {
    response = { error: String(error && error.message ? error.message : error) };
  }
  process.stdout.write(JSON.stringify(response) + "\n");
});

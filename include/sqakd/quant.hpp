// sqakd/quant.hpp - quantizers (presets, methods, estimators) and the conformance checker.
#pragma once

#include "sqakd/quant/estimator.hpp"
#include "sqakd/quant/fake_quant.hpp"
#include "sqakd/quant/methods.hpp"
#include "sqakd/quant/presets.hpp"
#include "sqakd/quant/range.hpp"
#include "sqakd/testing/quant_conformance.hpp"

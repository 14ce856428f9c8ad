// Internal declarations shared by the filter implementations (jinja_filters.cpp for strings and
// numbers plus the dispatch table, jinja_filters_seq.cpp for sequences and mappings).
//
// Every filter follows jinja2/filters.py (3.1) with transformers' tojson override; generators
// that jinja2 returns (map, select, items, unique, ...) come back as ListFlavor::kGenerator so
// that the same things fail as in Python (`tojson` of a generator, `length` of one).
//
// Thread safety: pure functions over their arguments.
#pragma once

#include <string>
#include <vector>

#include "text/jinja/jinja_interpreter.h"

namespace llmsync::text::jinja {

using FilterFn = Result<Value> (*)(Interpreter&, const Value& input, CallArgs& args);

// Sequence filters (jinja_filters_seq.cpp).
Result<Value> FilterFirst(Interpreter& interp, const Value& input, CallArgs& args);
Result<Value> FilterLast(Interpreter& interp, const Value& input, CallArgs& args);
Result<Value> FilterLength(Interpreter& interp, const Value& input, CallArgs& args);
Result<Value> FilterList(Interpreter& interp, const Value& input, CallArgs& args);
Result<Value> FilterJoin(Interpreter& interp, const Value& input, CallArgs& args);
Result<Value> FilterItems(Interpreter& interp, const Value& input, CallArgs& args);
Result<Value> FilterDictsort(Interpreter& interp, const Value& input, CallArgs& args);
Result<Value> FilterMap(Interpreter& interp, const Value& input, CallArgs& args);
Result<Value> FilterSelect(Interpreter& interp, const Value& input, CallArgs& args);
Result<Value> FilterReject(Interpreter& interp, const Value& input, CallArgs& args);
Result<Value> FilterSelectAttr(Interpreter& interp, const Value& input, CallArgs& args);
Result<Value> FilterRejectAttr(Interpreter& interp, const Value& input, CallArgs& args);
Result<Value> FilterSort(Interpreter& interp, const Value& input, CallArgs& args);
Result<Value> FilterUnique(Interpreter& interp, const Value& input, CallArgs& args);
Result<Value> FilterMax(Interpreter& interp, const Value& input, CallArgs& args);
Result<Value> FilterMin(Interpreter& interp, const Value& input, CallArgs& args);
Result<Value> FilterSum(Interpreter& interp, const Value& input, CallArgs& args);
Result<Value> FilterReverse(Interpreter& interp, const Value& input, CallArgs& args);
Result<Value> FilterBatch(Interpreter& interp, const Value& input, CallArgs& args);

// jinja2's make_attrgetter: "a.b.0" looked up with getitem, part by part.
Result<Value> LookupAttribute(Interpreter& interp, const Value& item, const Value& attribute);
// ignore_case: lowercases strings (for case-insensitive sorting and comparisons).
Value IgnoreCase(const Value& v);

}  // namespace llmsync::text::jinja

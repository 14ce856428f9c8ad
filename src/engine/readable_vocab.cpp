#include "engine/readable_vocab.h"

#include <set>
#include <string_view>

namespace llmsync::engine {
namespace {

constexpr std::int32_t kTypeNormal = 1;
constexpr std::int32_t kTypeUnknown = 2;
constexpr std::int32_t kTypeControl = 3;
constexpr std::string_view kSpace = "\xE2\x96\x81";  // "▁", SentencePiece's space

// Row scales of output.weight (see the header).
constexpr float kWordScale = 6.0f;
constexpr float kPunctScale = 5.0f;
constexpr float kFragmentScale = 1.0f;
constexpr float kEosScale = 0.05f;

constexpr std::string_view kWords[] = {
    "the",     "of",      "and",      "to",       "a",        "in",       "is",       "it",       "you",
    "that",    "he",      "was",      "for",      "on",       "are",      "with",     "as",       "I",
    "his",     "they",    "be",       "at",       "one",      "have",     "this",     "from",     "or",
    "had",     "by",      "not",      "word",     "but",      "what",     "some",     "we",       "can",
    "out",     "other",   "were",     "all",      "there",    "when",     "up",       "use",      "your",
    "how",     "said",    "an",       "each",     "she",      "which",    "do",       "their",    "time",
    "if",      "will",    "way",      "about",    "many",     "then",     "them",     "write",    "would",
    "like",    "so",      "these",    "her",      "long",     "make",     "thing",    "see",      "him",
    "two",     "has",     "look",     "more",     "day",      "could",    "go",       "come",     "did",
    "number",  "sound",   "no",       "most",     "people",   "my",       "over",     "know",     "water",
    "than",    "call",    "first",    "who",      "may",      "down",     "side",     "been",     "now",
    "find",    "any",     "new",      "work",     "part",     "take",     "get",      "place",    "made",
    "live",    "where",   "after",    "back",     "little",   "only",     "round",    "man",      "year",
    "came",    "show",    "every",    "good",     "me",       "give",     "our",      "under",    "name",
    "very",    "through", "just",     "form",     "sentence", "great",    "think",    "say",      "help",
    "low",     "line",    "differ",   "turn",     "cause",    "much",     "mean",     "before",   "move",
    "right",   "boy",     "old",      "too",      "same",     "tell",     "does",     "set",      "three",
    "want",    "air",     "well",     "also",     "play",     "small",    "end",      "put",      "home",
    "read",    "hand",    "port",     "large",    "spell",    "add",      "even",     "land",     "here",
    "must",    "big",     "high",     "such",     "follow",   "act",      "why",      "ask",      "men",
    "change",  "went",    "light",    "kind",     "off",      "need",     "house",    "picture",  "try",
    "us",      "again",   "animal",   "point",    "mother",   "world",    "near",     "build",    "self",
    "earth",   "father",  "head",     "stand",    "own",      "page",     "should",   "country",  "found",
    "answer",  "school",  "grow",     "study",    "still",    "learn",    "plant",    "cover",    "food",
    "sun",     "four",    "between",  "state",    "keep",     "eye",      "never",    "last",     "let",
    "thought", "city",    "tree",     "cross",    "farm",     "hard",     "start",    "might",    "story",
    "saw",     "far",     "sea",      "draw",     "left",     "late",     "run",      "while",    "press",
    "close",   "night",   "real",     "life",     "few",      "north",    "open",     "seem",     "together",
    "next",    "white",   "children", "begin",    "got",      "walk",     "example",  "ease",     "paper",
    "group",   "always",  "music",    "those",    "both",     "mark",     "often",    "letter",   "until",
    "mile",    "river",   "car",      "feet",     "care",     "second",   "book",     "carry",    "took",
    "science", "eat",     "room",     "friend",   "began",    "idea",     "fish",     "mountain", "stop",
    "once",    "base",    "hear",     "horse",    "cut",      "sure",     "watch",    "color",    "face",
    "wood",    "main",    "enough",   "plain",    "girl",     "usual",    "young",    "ready",    "above",
    "ever",    "red",     "list",     "though",   "feel",     "talk",     "bird",     "soon",     "body",
    "dog",     "family",  "direct",   "pose",     "leave",    "song",     "measure",  "door",     "product",
    "black",   "short",   "numeral",  "class",    "wind",     "question", "happen",   "complete", "ship",
    "area",    "half",    "rock",     "order",    "fire",     "south",    "problem",  "piece",    "told",
    "knew",    "pass",    "since",    "top",      "whole",    "king",     "space",    "heard",    "best",
    "hour",    "better",  "true",     "during",   "hundred",  "five",     "remember", "step",     "early",
    "hold",    "west",    "ground",   "interest", "reach",    "fast",     "verb",     "sing",     "listen",
    "six",     "table",   "travel",   "less",     "morning",  "ten",      "simple",   "several",  "toward",
    "war",     "lay",     "against",  "pattern",  "slow",     "center",   "love",     "person",   "money",
    "serve",   "appear",  "road",     "map",      "rain",     "rule",     "govern",   "pull",     "cold",
    "notice",  "voice",   "unit",     "power",    "town",     "fine",     "certain",  "fly",      "fall",
    "lead",    "cry",     "dark",     "machine",  "note",     "wait",     "plan",     "figure",   "star",
    "box",     "noun",    "field",    "rest",     "correct",  "able",     "pound",    "done",     "beauty",
    "drive",   "stood",   "contain",  "front",    "teach",    "week",     "final",    "gave",     "green",
    "oh",      "quick",   "develop",  "ocean",    "warm",     "free",     "minute",   "strong",   "special",
    "mind",    "behind",  "clear",    "tail",     "produce",  "fact",     "street",   "inch",     "nothing",
    "course",  "stay",    "wheel",    "full",     "force",    "blue",     "object",   "decide",   "surface",
    "deep",    "moon",    "island",   "foot",     "system",   "busy",     "test",     "record",   "boat",
    "common",  "gold",    "possible", "plane",    "dry",      "wonder",   "laugh",    "thousand", "ago",
    "ran",     "check",   "game",     "shape",    "yes",      "hot",      "miss",     "brought",  "heat",
    "snow",    "bring",   "The",      "It",       "We",       "You",      "They",     "This",     "In",
    "And",     "But",     "There",    "When",     "What",     "He",       "She",      "A",        "If",
};

constexpr std::string_view kPunctuation = ".,?!";

}  // namespace

ReadableVocab BuildReadableVocab() {
  ReadableVocab v;
  auto add = [&v](std::string text, std::int32_t type, float scale) {
    v.scores.push_back(-static_cast<float>(v.tokens.size()));
    v.tokens.push_back(std::move(text));
    v.types.push_back(type);
    v.output_row_scale.push_back(scale);
  };
  add("<unk>", kTypeUnknown, kEosScale);
  add("<s>", kTypeControl, kEosScale);
  add("</s>", kTypeControl, kEosScale);
  add("\n", kTypeNormal, kPunctScale * 0.6f);
  add(std::string(kSpace), kTypeNormal, kFragmentScale);
  for (char c = 0x21; c < 0x7F; ++c) {
    bool punct = kPunctuation.find(c) != std::string_view::npos;
    add(std::string(1, c), kTypeNormal, punct ? kPunctScale : kFragmentScale);
  }
  // Every "▁" prefix of every word, so that merging "▁", "t", "h", "e" reaches "▁the"; the whole
  // words get the large output rows.
  std::set<std::string> seen(v.tokens.begin(), v.tokens.end());
  std::set<std::string> words;
  for (std::string_view w : kWords) words.insert(std::string(kSpace) + std::string(w));
  for (std::string_view w : kWords) {
    for (std::size_t n = 1; n <= w.size(); ++n) {
      std::string piece = std::string(kSpace) + std::string(w.substr(0, n));
      if (!seen.insert(piece).second) continue;
      add(piece, kTypeNormal, words.contains(piece) ? kWordScale : kFragmentScale);
    }
  }
  // Longer pieces merge first among pairs that form tokens: score by length.
  for (std::size_t i = 0; i < v.tokens.size(); ++i) {
    if (v.types[i] == kTypeNormal) v.scores[i] = static_cast<float>(v.tokens[i].size());
  }
  return v;
}

}  // namespace llmsync::engine

#pragma once
// Precompiled: the heavy, stable third-party headers.
#include <spdlog/spdlog.h>
#include <yaml-cpp/yaml.h>
#include <boost/asio.hpp>
#include <boost/asio/ssl.hpp>
#include <boost/beast/core.hpp>
#include <boost/beast/http.hpp>
#include <boost/beast/ssl.hpp>
#include <nlohmann/json.hpp>

// chat_server — serves the page's files from one folder, and nothing outside it.
#pragma once

#include <wschat/ws/handshake.hpp>

#include <cctype>
#include <filesystem>
#include <fstream>
#include <sstream>
#include <string>
#include <string_view>

namespace chat_server {

/// The Content-Type for a file name, by extension.
inline std::string_view content_type(std::string_view name) {
    const auto ends_with = [name](std::string_view ext) {
        return name.size() >= ext.size() && name.substr(name.size() - ext.size()) == ext;
    };
    if (ends_with(".html"))
        return "text/html; charset=utf-8";
    if (ends_with(".js") || ends_with(".mjs"))
        return "text/javascript; charset=utf-8";
    if (ends_with(".css"))
        return "text/css; charset=utf-8";
    if (ends_with(".png"))
        return "image/png";
    if (ends_with(".svg"))
        return "image/svg+xml";
    return "application/octet-stream";
}

/// A request path that names a file inside the folder: letters, digits, '-', '_', '.',
/// '/', and no "..". Anything else is refused, so no request can climb out of `dir`.
inline bool safe_path(std::string_view path) {
    if (path.empty() || path.front() != '/' || path.find("..") != std::string_view::npos)
        return false;
    for (char c : path)
        if (!(std::isalnum(static_cast<unsigned char>(c)) || c == '-' || c == '_' || c == '.' ||
              c == '/'))
            return false;
    return true;
}

/// What keeps `dir` from serving the page: it is missing, not a folder, or has no
/// index.html; empty when it can.
inline std::string check_static_dir(const std::string& dir) {
    namespace fs = std::filesystem;
    std::error_code ec;
    if (!fs::exists(dir, ec))
        return "no such directory";
    if (!fs::is_directory(dir, ec))
        return "not a directory";
    if (!fs::is_regular_file(fs::path{dir} / "index.html", ec))
        return "no index.html in it";
    return {};
}

/// Answers GET for `/` (index.html) and the files of `dir`; 404 for anything else.
inline void serve_file(const std::string& dir, const ws::http_request& request,
                       ws::http_response& response) {
    std::string_view path = request.path();
    if (path == "/")
        path = "/index.html";
    if ((request.method != "GET" && request.method != "HEAD") || !safe_path(path)) {
        response = ws::make_error_response(404, "not found");
        return;
    }
    std::ifstream file{dir + std::string{path}, std::ios::binary};
    std::ostringstream body;
    if (!file || !(body << file.rdbuf())) {
        response = ws::make_error_response(404, "not found");
        return;
    }
    response.set_header("Content-Type", content_type(path));
    response.set_header("Cache-Control", "no-cache");
    response.body = request.method == "HEAD" ? std::string{} : body.str();
}

} // namespace chat_server

// Test support — self-signed certificates made at test time with OpenSSL (no key is ever
// committed), as PEM text and as files in a fresh temporary directory.
#pragma once

#include <openssl/evp.h>
#include <openssl/pem.h>
#include <openssl/x509.h>
#include <openssl/x509v3.h>

#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <memory>
#include <stdexcept>
#include <string>
#include <system_error>
#include <utility>

namespace test {

/// A certificate and its private key, PEM-encoded.
struct dev_cert {
    std::string cert_pem;
    std::string key_pem;
    std::string common_name;

    /// A P-256 certificate for localhost, 127.0.0.1 and ::1, its own CA (clients trust it by
    /// loading it as one). `valid_from_days`/`valid_days` set its window relative to now, so
    /// an expired one is `make("old", -30, 1)`.
    static dev_cert make(const std::string& common_name = "localhost", long valid_from_days = 0,
                         long valid_days = 30) {
        struct pkey_free {
            void operator()(EVP_PKEY* k) const { EVP_PKEY_free(k); }
        };
        struct x509_free {
            void operator()(X509* x) const { X509_free(x); }
        };
        struct bio_free {
            void operator()(BIO* b) const { BIO_free(b); }
        };
        const std::unique_ptr<EVP_PKEY, pkey_free> key{EVP_EC_gen("P-256")};
        const std::unique_ptr<X509, x509_free> cert{X509_new()};
        if (!key || !cert)
            throw std::runtime_error{"dev_cert: OpenSSL could not make a key"};
        X509_set_version(cert.get(), 2);
        static long serial = 1;
        ASN1_INTEGER_set(X509_get_serialNumber(cert.get()), serial++);
        constexpr long day = 24 * 60 * 60;
        X509_gmtime_adj(X509_getm_notBefore(cert.get()), valid_from_days * day);
        X509_gmtime_adj(X509_getm_notAfter(cert.get()), (valid_from_days + valid_days) * day);
        X509_NAME* name = X509_get_subject_name(cert.get());
        X509_NAME_add_entry_by_txt(name, "CN", MBSTRING_ASC,
                                   reinterpret_cast<const unsigned char*>(common_name.c_str()), -1,
                                   -1, 0);
        X509_set_issuer_name(cert.get(), name);
        X509_set_pubkey(cert.get(), key.get());
        X509V3_CTX ctx;
        X509V3_set_ctx_nodb(&ctx);
        X509V3_set_ctx(&ctx, cert.get(), cert.get(), nullptr, nullptr, 0);
        for (const auto& [nid, value] :
             {std::pair<int, const char*>{NID_subject_alt_name,
                                          "DNS:localhost,IP:127.0.0.1,IP:::1"},
              {NID_basic_constraints, "critical,CA:TRUE"},
              {NID_key_usage, "critical,digitalSignature,keyCertSign"},
              {NID_ext_key_usage, "serverAuth"}}) {
            X509_EXTENSION* ext = X509V3_EXT_conf_nid(nullptr, &ctx, nid, value);
            X509_add_ext(cert.get(), ext, -1);
            X509_EXTENSION_free(ext);
        }
        if (X509_sign(cert.get(), key.get(), EVP_sha256()) == 0)
            throw std::runtime_error{"dev_cert: OpenSSL could not sign"};

        const auto pem = [](auto write) {
            const std::unique_ptr<BIO, bio_free> bio{BIO_new(BIO_s_mem())};
            write(bio.get());
            char* data = nullptr;
            const long size = BIO_get_mem_data(bio.get(), &data);
            return std::string(data, static_cast<std::size_t>(size));
        };
        dev_cert out;
        out.common_name = common_name;
        out.cert_pem = pem([&](BIO* b) { PEM_write_bio_X509(b, cert.get()); });
        out.key_pem = pem([&](BIO* b) {
            PEM_write_bio_PrivateKey(b, key.get(), nullptr, nullptr, 0, nullptr, nullptr);
        });
        return out;
    }
};

/// A fresh temporary directory, removed with everything in it by the destructor.
class temp_dir {
public:
    temp_dir() {
        std::string pattern =
            (std::filesystem::temp_directory_path() / "wschat-test-XXXXXX").string();
        if (::mkdtemp(pattern.data()) == nullptr)
            throw std::runtime_error{"mkdtemp failed"};
        path_ = pattern;
    }
    temp_dir(const temp_dir&) = delete;
    temp_dir& operator=(const temp_dir&) = delete;
    ~temp_dir() {
        std::error_code ignored;
        std::filesystem::remove_all(path_, ignored);
    }

    const std::filesystem::path& path() const { return path_; }

    /// Writes `content` to `name` in the directory; returns its path.
    std::string write(const std::string& name, const std::string& content) const {
        const auto file = path_ / name;
        std::ofstream{file, std::ios::binary | std::ios::trunc} << content;
        return file.string();
    }

private:
    std::filesystem::path path_;
};

} // namespace test

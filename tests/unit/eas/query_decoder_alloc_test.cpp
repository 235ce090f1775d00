// decode() must not allocate for ordinary requests: the global operator new is replaced in
// this test binary and counts while `counting` is set.
#include <gtest/gtest.h>

#include <atomic>
#include <cstdlib>
#include <new>
#include <string>
#include <vector>

#include "eas/query_decoder.hpp"

#include "../support/count_allocations.hpp"

namespace {

using namespace mailgate::eas;

TEST(DecodeAllocation, TheCounterSeesAllocations) {
    allocations = 0;
    counting = true;
    auto* s = new std::string(100, 'x');
    counting = false;
    delete s;
    EXPECT_EQ(allocations.load(), 2);
}

TEST(DecodeAllocation, OrdinaryRequestsAllocateNothing) {
    const std::vector<request_input> requests = {
        {"Cmd=Sync&User=rmjones&DeviceId=v140Device&DeviceType=SmartPhone", "14.0", "", ""},
        {"User=t1@example.de&DeviceId=O8S9UD4DOH0SLEPOQC5AJ9AE3C&DeviceType=iPhone&Cmd=Settings",
         "16.1", "0", "Basic dDFAZXhhbXBsZS5kZTpzZWNyZXQ="},
        {"Cmd=SmartReply&User=CONTOSO%5Cjdoe&DeviceId=androidc195792594&DeviceType=Android&"
         "ItemId=5%3A12&CollectionId=5&SaveInSent=T",
         "14.1", "1307199584", ""},
        {"oBEJBBBOaW5lMkVDN0VDMEJCNTREBAGJpmIHQW5kcm9pZAcBAA==", "", "",
         "Basic Q09OVE9TT1xqZG9lOmh1bnRlcjI="},
        {"eQIJBBCuTs0Z9ZK6Vldwb/dM8JusBHVeHIQDUFBDBwEBAwYxMTkyODEBBUlOQk9Y", "", "", ""},
        {"jQAJBBBOaW5lMzQyQkEzRjNFNkM2BAAAAAAHQW5kcm9pZAcBAA==", "14.1", "0", "NTLM TlRMTVNTUA=="},
        {"jAAJBAp2MTQ=", "", "", ""},  // errors too
        {"Cmd=Sync&User=a&DeviceType=iPhone", "", "", ""},
        {"", "", "", "Basic dXNlcjpwYXNz", true},
    };
    eas_facts f;
    int ok = 0;
    allocations = 0;
    counting = true;
    for (int round = 0; round < 10; ++round) {
        for (const auto& r : requests) ok += decode(r, f) == decode_error::ok;
    }
    counting = false;
    EXPECT_EQ(allocations.load(), 0);
    EXPECT_EQ(ok, 70);
}

TEST(DecodeAllocation, ALargeRecordAllocatesOnceAndReusesTheBuffer) {
    const std::string q = "Cmd=Sync&User=u&DeviceType=t&DeviceId=" + std::string(200, 'D');
    const request_input in{q, "", "", ""};
    eas_facts f;
    allocations = 0;
    counting = true;
    const auto first = decode(in, f);
    const long after_first = allocations.load();
    const auto second = decode(in, f);
    counting = false;
    EXPECT_EQ(first, decode_error::ok);
    EXPECT_EQ(second, decode_error::ok);
    EXPECT_EQ(after_first, 1);
    EXPECT_EQ(allocations.load(), 1);
}

}  // namespace

function(mailgate_warnings target)
  target_compile_options(${target} PRIVATE -Wall -Wextra -Wpedantic -Wshadow=local)
  # GCC 12 reports false positives from inlined std::string code at -O2/-O3
  # (GCC bugs 105329, 105651); they fire inside libstdc++, not in our code.
  if(CMAKE_CXX_COMPILER_ID STREQUAL "GNU" AND CMAKE_CXX_COMPILER_VERSION VERSION_LESS 13)
    target_compile_options(${target} PRIVATE -Wno-restrict -Wno-stringop-overflow -Wno-stringop-overread
      -Wno-maybe-uninitialized  # boost::optional under -fsanitize (GCC bug 80635)
      -Wno-mismatched-new-delete)  # Asio coroutine frames' operator delete (GCC bug 109224)
  endif()
  if(MAILGATE_WERROR)
    target_compile_options(${target} PRIVATE -Werror)
  endif()
  if(MAILGATE_SANITIZE)
    target_compile_options(${target} PUBLIC -fsanitize=address,undefined -fno-omit-frame-pointer -fno-sanitize-recover=undefined)
    target_link_options(${target} PUBLIC -fsanitize=address,undefined)
  endif()
endfunction()

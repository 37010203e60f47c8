# `cpack -G DEB` from a build tree: one package with qmpp and qmpp-studio, the samples and the
# licence. Its dependencies are declared by dpkg-shlibdeps from what the binaries link, so it
# installs on a clean Debian 12 with `apt install ./qmpp-studio_*.deb`. Build it from the `cpu`
# preset: libraries of the CUDA toolkit belong to no Debian package, so a CUDA build is for the
# machine it was built on.
install(DIRECTORY ${CMAKE_SOURCE_DIR}/resources/samples/ DESTINATION share/qmpp-studio/samples)
install(FILES ${CMAKE_SOURCE_DIR}/LICENSE ${CMAKE_SOURCE_DIR}/README.md
        DESTINATION share/doc/qmpp-studio)

set(CPACK_PACKAGE_NAME qmpp-studio)
set(CPACK_PACKAGE_VENDOR "QuickMerge++ Studio")
set(CPACK_PACKAGE_CONTACT "QuickMerge++ Studio developers <qmpp-studio@localhost>")
set(CPACK_PACKAGE_DESCRIPTION_SUMMARY "QuickMerge++ token merging: desktop studio and CLI")
set(CPACK_PACKAGE_VERSION ${PROJECT_VERSION})
set(CPACK_PACKAGING_INSTALL_PREFIX /usr)
set(CPACK_GENERATOR DEB)
set(CPACK_DEBIAN_FILE_NAME DEB-DEFAULT)
set(CPACK_DEBIAN_PACKAGE_SECTION science)
set(CPACK_DEBIAN_PACKAGE_SHLIBDEPS ON)
set(CPACK_PACKAGE_DESCRIPTION "qmpp-studio shows what a token merge does to an image, a video \
or a file of embeddings (saliency, groups, merged tokens), compares methods and profiles \
kernels; qmpp runs the same engine headless.")
if(QMPP_HAVE_CUDA)
  message(STATUS "Packaging: this build links the CUDA toolkit's libraries; build the .deb from "
                 "the `cpu` preset to install it on other machines")
endif()
include(CPack)
